#!/usr/bin/env python3
"""Keeps `<outputDir>/progress.json` ({step, total_steps}) current while verl trains, for the loop's status.

    progress.py <spec.json> --while-running <pid>

Every few seconds, the last step verl's file logger recorded (`<outputDir>/metrics.jsonl`, one JSON line per step)
against the planned steps (overrides.planned_steps); stops when the process <pid> (the training) is gone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

# The recipe folder stays free of __pycache__, whoever runs this.
sys.dont_write_bytecode = True
from overrides import METRICS_FILE, SpecError, load_spec, planned_steps  # noqa: E402

# core/training.ts TRAINING_PROGRESS_FILE.
PROGRESS_FILE = "progress.json"
POLL_SECONDS = 15
# A step's line holds a few hundred metrics; the last one is within this many bytes of the end.
TAIL_BYTES = 256 * 1024


def last_step(metrics_file: Path) -> int | None:
    try:
        with metrics_file.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - TAIL_BYTES))
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            step = json.loads(line).get("step")
        except (ValueError, AttributeError):
            continue  # the first, cut line of the tail, or one being written
        if isinstance(step, int):
            return step
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_progress(output: Path, step: int, total: int) -> None:
    target = output / PROGRESS_FILE
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps({"step": step, "total_steps": total}) + "\n", encoding="utf-8")
    os.replace(temporary, target)


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[2] != "--while-running" or not argv[3].isdigit():
        print("usage: progress.py <spec.json> --while-running <pid>", file=sys.stderr)
        return 2
    try:
        spec = load_spec(argv[1])
    except SpecError as error:
        print(f"verl-grpo: {error}", file=sys.stderr)
        return 1
    output, total, pid = Path(spec["outputDir"]), planned_steps(spec), int(argv[3])
    written = None
    while True:
        running = alive(pid)
        step = last_step(output / METRICS_FILE) or 0
        if step != written:
            write_progress(output, step, max(total, step))
            written = step
        if not running:
            return 0
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
