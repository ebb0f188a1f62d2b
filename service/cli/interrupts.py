"""SIGINT and SIGTERM during a command: clean up, say so in one line, exit 130 or 143.

Python turns SIGINT into KeyboardInterrupt but lets SIGTERM kill the process on the spot, so a
`kill` (or a container runtime stopping the job) would skip the clean-up that every writer does
on the way out (`except BaseException`: remove the temporary file, discard the run's parts).
While a command runs, both signals raise `Interrupted` instead, which unwinds the stack like
KeyboardInterrupt; `main` prints one line and exits 128 + the signal's number. A second signal
during the clean-up is ignored, so the clean-up finishes.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """The command was stopped by `signum`."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


@contextmanager
def signals_raise() -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM raise `Interrupted` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return  # already unwinding: let the clean-up finish
        fired = True
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
