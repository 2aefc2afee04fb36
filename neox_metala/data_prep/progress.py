"""A tqdm bar over input bytes that also shows documents/s and tokens/s, and the closing throughput line."""

from __future__ import annotations

import sys
import time

POSTFIX_EVERY_SECONDS = 0.5


class Progress:
    def __init__(self, total_bytes: int, enabled: bool = True):
        self.total_bytes, self.enabled = total_bytes, enabled
        self.documents = self.tokens = 0
        self._bar = None
        self._started = self._shown = time.time()

    def __enter__(self) -> Progress:
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=self.total_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc="tokenize",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self._started = time.time()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._show_rates()
            self._bar.close()

    @property
    def seconds(self) -> float:
        return max(time.time() - self._started, 1e-9)

    def advance_bytes(self, count: int) -> None:
        if self._bar is not None and count > 0:
            self._bar.update(count)

    def advance_work(self, documents: int, tokens: int) -> None:
        self.documents += documents
        self.tokens += tokens
        if self._bar is not None and time.time() - self._shown >= POSTFIX_EVERY_SECONDS:
            self._show_rates()

    def _show_rates(self) -> None:
        self._shown = time.time()
        self._bar.set_postfix_str(
            f"{self.documents / self.seconds:,.0f} docs/s, {self.tokens / self.seconds / 1e6:.2f}M tokens/s",
            refresh=False,
        )
