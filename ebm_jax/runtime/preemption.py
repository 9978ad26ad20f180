"""SIGTERM and SIGINT as a request to stop: the trainer checkpoints, then raises ``Preempted``.

The exit code of a pre-empted run is ``128 + signal number`` (143 for SIGTERM, 130 for
SIGINT), what a shell reports for a process ended by that signal, so schedulers that restart
failed jobs restart it, and it resumes from the checkpoint.
"""
from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """Training stopped on a signal after saving a checkpoint at ``step``."""

    def __init__(self, signum: int, step: int):
        self.signum, self.step = int(signum), int(step)
        self.exit_code = 128 + self.signum
        super().__init__(f"stopped by {signal.Signals(self.signum).name} after saving a "
                         f"checkpoint at step {self.step}; run the same command again to resume")


class StopRequest:
    """While entered, SIGTERM and SIGINT set ``signum`` instead of ending the process.

    The first signal puts the previous handlers back, so a second one acts at once. Outside
    the main thread, where Python cannot install handlers, it does nothing.
    """

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.signum = signum
        self._restore()

    def _restore(self):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def __exit__(self, *exc):
        self._restore()
        return False
