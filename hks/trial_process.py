"""One trial in a fresh process (``--trial-process``): the memory it took goes back when it ends.

TensorFlow keeps every traced training step of a process alive (about 100 MB per classic trial,
measured by ``bench/memory_growth.py``), and a crash or an out-of-memory kill inside its C++ code
takes the whole process with it. So the worker (or the in-process search) stays the only owner of
the storage, and each trial trains in a spawned child that imports TensorFlow for itself. The
child relays each epoch's values to the parent, which stores them and asks the pruner, and gets
the answer back; its result comes back the same way. A child that dies is a failed trial, its
epochs so far kept; the parent stopping (SIGTERM, a lost lease) kills the child at once.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from hks.evaluation import Objective, call_objective, failed_result, keras_objective
from hks.stopping import die_with_parent

POLL_SECONDS = 0.2
_EPOCH, _PRUNE, _RESULT, _ERROR = "epoch", "prune", "result", "error"


def wants_fresh_process(choice: str, objective: Objective) -> bool:
    """``fresh``/``same`` as asked; ``auto``: fresh for hks's own Keras objectives (which import
    TensorFlow). A fresh process needs an objective that pickles (a module-level function)."""
    keras_trains = getattr(objective, "__module__", "") == "hks.objective" or isinstance(objective, keras_objective)
    if choice == "same" or (choice == "auto" and not keras_trains):
        return False
    try:
        pickle.dumps(objective)
    except Exception:  # a lambda or a closure: it can only run here
        return False
    return True


def call_in_fresh_process(objective: Objective, point: dict[str, Any], settings: Any, *, tid: int | None,
                          on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                          should_prune: Callable[[int, dict[str, float]], Any] | None = None,
                          check: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """:func:`hks.evaluation.call_objective` in a spawned child; the hooks run here, in the parent.

    ``check`` is called while waiting (it raises to stop: the child is killed, the exception goes on)."""
    context = mp.get_context("spawn")
    here, there = context.Pipe()
    child = context.Process(target=_child_main, name=f"hks-trial-{tid}", daemon=True,
                            args=(there, objective, point, settings, tid, should_prune is not None))
    child.start()
    there.close()
    epochs: list[dict[str, float]] = []
    try:
        while True:
            check()
            if not here.poll(POLL_SECONDS):
                if not child.is_alive() and not here.poll(0):
                    return _died(child, point, tid, epochs)
                continue
            try:
                kind, *payload = here.recv()
            except (EOFError, OSError):
                return _died(child, point, tid, epochs)
            if kind == _EPOCH:
                epochs.append(payload[1])
                if on_epoch is not None:
                    on_epoch(*payload)
                here.send(None)
            elif kind == _PRUNE:
                here.send(should_prune(*payload) if should_prune is not None else None)
            elif kind == _ERROR:
                raise payload[0]
            else:
                return payload[0]
    finally:
        _end(child)
        here.close()


def _end(child) -> None:
    if child.is_alive():
        child.kill()
    child.join(timeout=10)


class TrialProcessDied(RuntimeError):
    """The trial's process ended without a result: killed (out of memory?) or crashed in C code."""


def _died(child, point: dict[str, Any], tid: int | None, epochs: list[dict[str, float]]) -> dict[str, Any]:
    """A failed result for a child that ended without one, with the epochs it reported."""
    child.join(timeout=10)
    code = child.exitcode
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        how = f"killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    else:
        how = f"exited with code {code}"
    history: dict[str, list[float]] = {}
    for logs in epochs:
        for key, value in logs.items():
            history.setdefault(key, []).append(value)
    result = failed_result(point, TrialProcessDied(f"the trial's process {how}"), tid)
    return {**result, "history": history, "traceback": "", "finished_at": time.time()}


def _child_main(conn, objective: Objective, point: dict[str, Any], settings: Any, tid: int | None,
                asks_prune: bool) -> None:
    """The child: ignore the terminal's Ctrl-C (the parent decides), die with the parent, train, answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(signal.SIGKILL)  # a killed worker leaves no trial training on its own
    verbose = getattr(settings, "verbose", False)
    if not verbose:
        from hks.quiet import quiet_tensorflow

        quiet_tensorflow(False)

    def on_epoch(epoch: int, logs: dict[str, float]) -> None:
        conn.send((_EPOCH, epoch, logs))
        conn.recv()

    def should_prune(epoch: int, logs: dict[str, float]) -> Any:
        conn.send((_PRUNE, epoch, logs))
        return conn.recv()

    try:
        result = call_objective(objective, point, settings, tid=tid, on_epoch=on_epoch,
                                should_prune=should_prune if asks_prune else None)
    except BaseException as exc:  # a setup problem (no dataset...): the parent raises it
        conn.send((_ERROR, _picklable(exc)))
        return
    conn.send((_RESULT, result))
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # TensorFlow's exit handlers can take seconds; nothing is left to flush


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")

