"""Stopping a worker on SIGTERM / SIGINT within a bounded time, whatever it is doing.

The signal handler never raises into a database driver (a PostgreSQL call interrupted by an
exception leaves its connection unusable: "can't change 'autocommit' now"). It only sets a flag,
and raises :class:`Stopped` at once only while the main thread is inside the objective and not in
a store call (:meth:`Stopper.interrupting`). Elsewhere the worker checks the flag at its next safe
point. A hard deadline backs this up: if the process is still there ``DEADLINE_SECONDS`` after the
signal, a thread releases the running trial (best effort, bounded) and ends the process.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

DEADLINE_SECONDS = 8.0  # below `docker stop`'s default 10 s before its SIGKILL
RELEASE_SECONDS = 3.0
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGINT, raised in the main thread at a safe point so a running trial unwinds."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signum}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class Stopper:
    """The stop flag of one process, its signal handler and its deadline."""

    def __init__(self, deadline: float = DEADLINE_SECONDS, immediate: bool = True):
        """``deadline``: seconds from the signal to the forced exit (0: none, for tests in-process).
        ``immediate=False``: never raise from the signal handler, even inside the objective; stop at the
        next safe point (an epoch boundary), the deadline backing it up. For an in-process search, whose
        objective is TensorFlow's C code, where an exception raised by a handler surfaces as a
        ``SystemError`` traceback."""
        self.deadline = deadline
        self.immediate = immediate
        self.requested = threading.Event()
        self.signum = signal.SIGTERM
        self.interruptible = False
        self.on_deadline: Callable[[], None] | None = None  # e.g. release the running trial

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def request(self, signum: int = signal.SIGTERM) -> None:
        """Ask this process to stop (from any thread); the main thread stops at its next safe point."""
        if not self.requested.is_set():
            self.signum = signum
            self.requested.set()
            if self.deadline > 0:
                threading.Thread(target=self._enforce_deadline, daemon=True,
                                 name="stop-deadline").start()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.request(signum)
        if self.interruptible:
            self.interruptible = False
            raise Stopped(self.signum)

    def check(self) -> None:
        """A safe point: raise :class:`Stopped` if a stop was requested."""
        if self.requested.is_set():
            raise Stopped(self.signum)

    @contextmanager
    def interrupting(self) -> Iterator[None]:
        """Inside: a signal raises :class:`Stopped` at once (the objective's own code)."""
        self.check()
        self.interruptible = self.immediate
        try:
            yield
        finally:
            self.interruptible = False

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """A store call inside :meth:`interrupting`: a signal waits for it, then stops the trial."""
        was, self.interruptible = self.interruptible, False
        try:
            yield
        finally:
            self.interruptible = was
            if was:
                self.check()

    def _enforce_deadline(self) -> None:
        time.sleep(self.deadline)
        print(f"worker: not stopped {self.deadline:.0f}s after signal {self.signum}: releasing its trial and "
              "exiting now", flush=True)
        if self.on_deadline is not None:
            releaser = threading.Thread(target=self.on_deadline, daemon=True)
            releaser.start()
            releaser.join(RELEASE_SECONDS)
        os._exit(128 + self.signum)


def die_with_parent(signum: int) -> None:
    """Have the kernel send ``signum`` to this process when its parent dies (Linux; elsewhere a no-op:
    the caller's own watch of its parent covers it)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError):
        pass
