"""One trial in a fresh process (``--trial-process``): the memory it took goes back when it ends.

TensorFlow keeps every traced training step of a process alive (about 100 MB per classic trial,
measured by ``bench/memory_growth.py``), and a crash or an out-of-memory kill inside its C++ code
takes the whole process with it. So the worker (or the in-process search) stays the only owner of
the storage, and each trial trains in a child process that imports TensorFlow for itself. The
child relays each epoch's values to the parent, which stores them and asks the pruner, and gets
the answer back; its result comes back the same way. A child that dies is a failed trial, its
epochs so far kept; the parent stopping (SIGTERM, a lost lease) kills the child at once, and the
kernel kills it if the parent dies.
"""

from __future__ import annotations

import functools
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hks.errors import ConfigError
from hks.evaluation import Objective, call_objective, failed_result, keras_objective
from hks.stopping import die_with_parent

POLL_SECONDS = 0.2
_EPOCH, _PRUNE, _RESULT, _ERROR = "epoch", "prune", "result", "error"


def wants_fresh_process(choice: str, objective: Objective) -> bool:
    """``fresh``/``same`` as asked; ``auto``: fresh for hks's own Keras objectives (which import
    TensorFlow) unless defined in the script being run. A fresh process needs an objective that
    pickles (a module-level function) and that it can import (:func:`check_trial_process`)."""
    keras_trains = getattr(objective, "__module__", "") == "hks.objective" or isinstance(objective, keras_objective)
    if choice == "same" or (choice == "auto" and not keras_trains) or defined_in_script(objective):
        return False
    try:
        pickle.dumps(objective)
    except Exception:  # a lambda or a closure: it can only run here
        return False
    return True


def defined_in_script(objective: Objective) -> bool:
    """Whether the objective (or the builder of a :class:`keras_objective`) lives in the script being run
    (``__main__``), which a child process cannot import by name: it can only run in this process."""
    target = objective.build if isinstance(objective, keras_objective) else objective
    while isinstance(target, functools.partial):
        target = target.func
    return getattr(target, "__module__", None) == "__main__"


def check_trial_process(choice: str, objective: Objective) -> None:
    """Refuse ``--trial-process fresh`` for an objective a child process cannot import, before any trial."""
    if choice == "fresh" and defined_in_script(objective):
        raise ConfigError("--trial-process fresh runs each trial in a new process, which cannot import an objective "
                          "(or a keras_objective builder) defined in the script you run: move it into a module, or "
                          "use trial_process='same' (or 'auto', which then trains in this process)")


def call_in_fresh_process(objective: Objective, point: dict[str, Any], settings: Any, *, tid: int | None,
                          on_epoch: Callable[[int, dict[str, float]], None] | None = None,
                          should_prune: Callable[[int, dict[str, float]], Any] | None = None,
                          check: Callable[[], None] = lambda: None, checkpoint: str | None = None) -> dict[str, Any]:
    """:func:`hks.evaluation.call_objective` in a child ``python -m hks.trial_process``; the hooks run
    here, in the parent. (A plain child, not multiprocessing's spawn, which would re-run the user's
    script when it lacks an ``if __name__ == "__main__"`` guard.)

    ``check`` is called while waiting (it raises to stop: the child is killed, the exception goes on)."""
    here_socket, there_socket = socket.socketpair()
    with there_socket:
        child = subprocess.Popen([sys.executable, "-m", "hks.trial_process", str(there_socket.fileno())],
                                 pass_fds=[there_socket.fileno()], stdin=subprocess.DEVNULL, env=_child_env(),
                                 preexec_fn=functools.partial(die_with_parent, signal.SIGKILL))
    here = Connection(here_socket.detach())
    epochs: list[dict[str, float]] = []
    try:
        try:
            here.send(list(sys.path))  # first, so that the child can unpickle the objective by module name
            here.send((objective, point, settings, tid, should_prune is not None, checkpoint))
        except OSError:  # the child is gone already
            return _died(child, point, tid, epochs)
        while True:
            check()
            if not here.poll(POLL_SECONDS):
                if child.poll() is not None and not here.poll(0):
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
        here.close()
        _end(child)


def _child_env() -> dict[str, str]:
    """This environment, with the folder this ``hks`` came from first on the path: the child runs the
    same hks as its parent, wherever the parent found it (a checkout, a path set up by a script)."""
    here = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": here + (os.pathsep + path if path else "")}


def _end(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.kill()
    child.wait(timeout=30)


class TrialProcessDied(RuntimeError):
    """The trial's process ended without a result: killed (out of memory?) or crashed in C code."""


def _died(child: subprocess.Popen, point: dict[str, Any], tid: int | None,
          epochs: list[dict[str, float]]) -> dict[str, Any]:
    """A failed result for a child that ended without one, with the epochs it reported."""
    code = child.wait(timeout=30)
    if code < 0:
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


def _child_main(fd: int) -> None:
    """The child: ignore the terminal's Ctrl-C (the parent decides), train, answer, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    sys.path[:] = conn.recv()
    objective, point, settings, tid, asks_prune, checkpoint = conn.recv()
    settings = child_settings(settings)
    if not getattr(settings, "verbose", False):
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
                                should_prune=should_prune if asks_prune else None, checkpoint=checkpoint)
    except BaseException as exc:  # a setup problem (no dataset...): the parent raises it
        conn.send((_ERROR, _picklable(exc)))
        return
    conn.send((_RESULT, result))
    conn.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # TensorFlow's exit handlers can take seconds; nothing is left to flush


def child_settings(settings: Any) -> Any:
    """The settings a trial's own process trains with: TensorFlow's faster pooled allocator for
    ``--cpu-allocator auto``, since all its memory goes back when the process ends anyway."""
    if getattr(settings, "cpu_allocator", None) == "auto":
        return settings.replace(cpu_allocator="pool")
    return settings


def _picklable(exc: BaseException) -> BaseException:
    try:
        pickle.dumps(exc)
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


if __name__ == "__main__":
    _child_main(int(sys.argv[1]))
