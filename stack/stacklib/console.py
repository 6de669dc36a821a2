"""What the stack's command-line tools print: progress lines, one-line errors, log tails."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from stacklib import StackError

# stackctl starts and stops servers from several threads at once: one line never cuts another.
_print_lock = threading.Lock()


def say(message: str) -> None:
    """Print one line at once."""
    with _print_lock:
        print(message, flush=True)


def show(path: Path) -> str:
    """``path`` relative to the working directory when it is below it (shorter messages)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def report(program: str, error: StackError) -> None:
    """``<program>: error: <message>`` on stderr, then the error's details indented."""
    with _print_lock:
        print(f"{program}: error: {error}", file=sys.stderr, flush=True)
        for line in error.details:
            print(f"    {line}", file=sys.stderr, flush=True)


def log_tail(path: Path, lines: int, since: int = 0) -> list[str]:
    """The last ``lines`` lines of ``path`` from byte offset ``since`` (none if it is missing)."""
    try:
        with path.open("rb") as log:
            log.seek(since)
            text = log.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[-lines:] if lines > 0 else []
