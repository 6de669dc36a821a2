"""The bench's one output channel: lines flushed at once, so they interleave with job output."""

from __future__ import annotations


def say(message: str) -> None:
    print(message, flush=True)
