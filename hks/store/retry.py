"""Riding out a job-store outage: which errors are outages, and one retry loop for master and workers.

Only connection-type errors count as an outage (the server restarting, the network blinking, a
SQLite file busy): they are retried with back-off for ``--store-patience`` seconds, announced once
when the outage starts and once when it ends. Any other database error (a constraint violated,
a malformed statement, two masters writing the same trials) is a bug or a misuse and is raised at
once as a one-line :class:`~hks.errors.StoreError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hks.errors import StoreError

T = TypeVar("T")
FIRST_DELAY, MAX_DELAY = 0.5, 15.0
DEFAULT_PATIENCE = 600.0
# PostgreSQL SQLSTATE classes/codes meaning "cannot talk to the server now": connection exceptions,
# admin/crash shutdown, cannot connect now (starting up), too many connections.
_PG_OUTAGE_STATES = ("08", "57P01", "57P02", "57P03", "53300")
# What the server says when it refuses a connection for good (a login failure at connect time has no
# SQLSTATE in psycopg): retrying cannot cure these.
_REFUSALS = ("authentication failed", "does not exist", "no pg_hba.conf entry", "permission denied",
             "auth failed", "authentication failure")


def is_store_error(exc: BaseException) -> bool:
    """A database driver's error, as opposed to a bug in hks or in an objective."""
    return any(cls.__module__.startswith(("sqlalchemy", "pymongo", "psycopg", "sqlite3"))
               for cls in type(exc).__mro__)


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean "the store cannot be reached now", which retrying can cure:
    a lost or refused connection, a server shutting down or starting, a busy SQLite file. Not a
    refused login, a missing database, a violated constraint or a malformed statement."""
    if getattr(exc, "connection_invalidated", False):
        return True
    original = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    names = {cls.__name__ for cls in type(exc).__mro__} | {cls.__name__ for cls in type(original).__mro__}
    module = type(original).__module__
    if module.startswith("pymongo"):
        # AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError... but not a refused login
        return "ConnectionFailure" in names and "OperationFailure" not in names
    if module.startswith("sqlite3"):
        return "OperationalError" in names and ("locked" in str(original) or "busy" in str(original))
    state = getattr(original, "sqlstate", None)  # psycopg
    if state:
        return state.startswith(_PG_OUTAGE_STATES)
    if any(refusal in str(original).lower() for refusal in _REFUSALS):
        return False
    return bool(names & {"OperationalError", "InterfaceError"})


def describe(exc: BaseException) -> str:
    """A driver error in one line, with anything that looks like a password masked."""
    from hks.store.urls import scrub

    return f"{type(exc).__name__}: {scrub(str(exc))}"


class OutageNotice:
    """Says once that the store is unreachable and once that it is back, however many threads and
    retries see the outage in between."""

    def __init__(self, who: str = "hks", say: Callable[[str], None] | None = None):
        self.who = who
        self.say = say or (lambda line: print(line, flush=True))
        self._lock = threading.Lock()
        self._since: float | None = None

    @property
    def active(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, what: str, patience: float | None = None) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        until = f"; retrying for up to {patience:.0f}s" if patience else "; retrying"
        self.say(f"{self.who}: the job store is unreachable while {what} ({describe(exc)}){until}")

    def recovered(self) -> None:
        with self._lock:
            if self._since is None:
                return
            seconds, self._since = time.monotonic() - self._since, None
        self.say(f"{self.who}: the job store is back after {seconds:.0f}s")


NOTICE = OutageNotice()


def retrying(call: Callable[[], T], what: str, patience: float = DEFAULT_PATIENCE, *,
             notice: OutageNotice | None = None, stop: Callable[[], bool] | None = None) -> T:
    """``call()``, riding out an outage of up to ``patience`` seconds with back-off.

    ``stop()`` is asked between tries: when it is true the wait ends with :class:`StoreError` at once
    (a worker told to stop must not wait for the database). Other driver errors raise a one-line
    :class:`StoreError` at once."""
    notice = notice or NOTICE
    delay, deadline = FIRST_DELAY, time.monotonic() + patience
    while True:
        try:
            value = call()
        except Exception as exc:
            if not is_store_error(exc):
                raise
            if not is_outage(exc):
                raise StoreError(f"the job store refused {what}: {describe(exc)} (not a connection problem: "
                                 "a bug, or two masters on one experiment)") from None
            if time.monotonic() + delay > deadline or (stop is not None and stop()):
                raise StoreError(_gave_up(exc, what, patience)) from None
            notice.failed(exc, what, patience)
            _sleep(delay, stop)
            delay = min(MAX_DELAY, delay * 2)
            continue
        notice.recovered()
        return value


def _gave_up(exc: BaseException, what: str, patience: float) -> str:
    if patience <= 0:
        return f"cannot reach the job store while {what}: {describe(exc)} (is the server running and reachable?)"
    return (f"the job store has been unreachable for {patience:.0f}s while {what}: {describe(exc)} "
            "(raise --store-patience to wait longer)")


def _sleep(seconds: float, stop: Callable[[], bool] | None) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if stop is not None and stop():
            return
        time.sleep(min(left, 0.2))


def call_quietly(call: Callable[[], Any], what: str, notice: OutageNotice | None = None) -> Any:
    """One try of a store call whose failure is not fatal (a heartbeat, metrics): an outage is
    announced once through ``notice``, anything else in one line; returns None on failure."""
    notice = notice or NOTICE
    try:
        value = call()
    except Exception as exc:
        if is_store_error(exc) and is_outage(exc):
            notice.failed(exc, what)
        else:
            print(f"{notice.who}: {what} failed ({describe(exc)})", flush=True)
        return None
    notice.recovered()
    return value
