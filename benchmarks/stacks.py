"""Summarize py-spy's raw stacks (``BENCH_PY_SPY``, see bench_pipeline.measure).

Per thread: the share of its samples each frame holds itself (``self``) and
with what it calls (``inclusive``), file paths shortened. A sample counts for
the thread it was taken in; with ``--thread NAME`` only threads whose name
contains NAME (``MainThread``: the asyncio loop, which also reads the binlog;
``wpcdc-binlog``: the library reader's thread).

    .venv/bin/python benchmarks/stacks.py /tmp/stacks/wpcdc-0.txt --thread MainThread
    .venv/bin/python benchmarks/stacks.py /tmp/stacks/wpcdc-0.txt --under Folder.feed

Time blocked in a system call (``SocketIO.readinto``, ``select``) is counted as
the frame's own: py-spy's ``--nonblocking`` sampling cannot always tell a thread
waiting for data or for the GIL from one that runs.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_PATH = re.compile(r"\((?:/[^ ]*/)?(?:site-packages/)?([^/ ][^ ]*:\d+)\)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stacks", type=Path)
    parser.add_argument("--thread", default="", help="only threads whose name contains this")
    parser.add_argument("--under", default="", help="only samples with a frame containing this")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in args.stacks.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread, *frames = stack.split(";")
        threads[thread] += int(count)
        if args.thread not in thread or (args.under and not any(args.under in f for f in frames)):
            continue
        frames = [_PATH.sub(lambda m: f"({m.group(1).split('wpcdc/', 1)[-1]})", f) for f in frames]
        total += int(count)
        if frames:
            own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    print("samples per thread:", ", ".join(f"{t} {n}" for t, n in threads.most_common()))
    print(f"{total} samples selected")
    for title, counts in (("self", own), ("inclusive", inclusive)):
        print(f"--- {title}")
        for frame, count in counts.most_common(args.top):
            print(f"{100 * count / max(total, 1):5.1f}% {frame}")


if __name__ == "__main__":
    main()
