"""Clean interruption: SIGINT/SIGTERM during training ask the loop to checkpoint and stop.

The first signal sets a flag the training loop checks before every step, so it stops between
steps with a resumable checkpoint; a second SIGINT aborts at once (KeyboardInterrupt).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from flowforge.errors import FlowforgeError


class RunInterrupted(FlowforgeError):
    """A run stopped on a signal after writing a checkpoint; the message says how to resume."""

    def __init__(self, message: str, step: int):
        self.step = step
        super().__init__(message)


class StopOnSignal:
    """Context manager: while active, SIGINT and SIGTERM set `requested` instead of killing.

    Outside the main thread signals cannot be caught; the context then does nothing.

    >>> with StopOnSignal() as stop:
    ...     trainer.fit(should_stop=lambda: stop.requested)
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, on_signal: Callable[[str], None] | None = None):
        self.requested: str | None = None
        self._on_signal = on_signal
        self._saved: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(signum).name
        if self._on_signal is not None:
            self._on_signal(self.requested)

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()
