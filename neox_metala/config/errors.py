"""The one error type of the config system, and the helpers that keep its messages to one useful line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A configuration mistake, reported as one line: where it came from, the key, the bad value and the fix.

    ``source`` is the config file (or ``<dict>`` / ``<command line>``) the offending key came from; it is put in
    front of the message so that a user with five YAML files knows which one to open.
    """

    def __init__(self, message: str, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        one_line = " ".join(message.split("\n"))
        super().__init__(f"{source}: {one_line}" if source else one_line)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest candidate, or '' when nothing is close enough to be a typo."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""


def choices_text(choices: Iterable[object]) -> str:
    return ", ".join(repr(choice) for choice in choices)
