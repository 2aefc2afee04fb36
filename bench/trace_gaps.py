"""Where the GPU waits in a profiled timeline: the idle time between kernels and the largest gaps with the kernels
on either side.

    python bench/trace_gaps.py TRACE.json [--top 15] [--steps 5]

TRACE.json is a chrome trace of kernel events (`bench/layer.py --trace DIR` writes one per block). Idle is the
time between the end of one kernel and the start of the next on any stream, per step (the trace's steps counted by
--steps); the kernels are the device's activity, so every gap is host work the device waited for.
"""

from __future__ import annotations

import argparse
import json


def kernels(path: str) -> list[tuple[float, float, str]]:
    with open(path) as f:
        events = json.load(f)["traceEvents"]
    rows = [
        (e["ts"], e["ts"] + e.get("dur", 0), e["name"])
        for e in events
        if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
    ]
    return sorted(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    rows = kernels(args.trace)
    busy_until, gaps, busy = rows[0][0], [], 0.0
    previous = rows[0][2]
    for start, end, name in rows:
        if start > busy_until:
            gaps.append((start - busy_until, previous, name))
        busy += max(0.0, end - max(start, busy_until))
        if end > busy_until:
            busy_until, previous = end, name
    span = busy_until - rows[0][0]
    idle = sum(g for g, _, _ in gaps)
    print(
        f"{args.trace}: {len(rows)} kernels, span {span / 1e3 / args.steps:.3f} ms per step, busy "
        f"{busy / 1e3 / args.steps:.3f}, idle {idle / 1e3 / args.steps:.3f} (gaps between steps included)"
    )
    for gap, before, after in sorted(gaps, reverse=True)[: args.top]:
        print(f"  {gap:8.1f} us  after {before[:60]:<60}  before {after[:60]}")


if __name__ == "__main__":
    main()
