"""A worker: reserve a trial from the job store, train it while a heartbeat renews its lease,
write its result and per-epoch metrics, repeat.

``python -m hks worker --store URL --exp-key NAME`` (or ``python -m hks.worker``). The
objective is imported by name and the space rebuilt from its name, both checked against the
experiment record (no code travels through the store). SIGTERM or Ctrl-C releases the running
trial at once; a worker killed outright stops renewing its lease and the trial is requeued by
whoever looks next. A worker with nothing to do waits (``--idle-timeout``, default forever).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hks import config, progress
from hks import results as res
from hks.config import Settings
from hks.errors import HksError, StoreError, WorkerError
from hks.evaluation import call_objective
from hks.store import check_settings, describe, is_store_error, open_store, store_url
from hks.store import protocol as p

# Settings a worker takes from its own flags and environment; all others come from the experiment.
LOCAL_SETTINGS = ("store", "mongo_db_host", "mongo_db_port", "experiment_name", "data_dir", "download",
                  "threads", "gpu", "results_dir", "idle_timeout")
WORKER_FLAGS = LOCAL_SETTINGS + ("space", "objective")
IDLE_POLL_MIN, IDLE_POLL_MAX = 0.02, 1.0
SWEEP_SECONDS = 1.0  # how often a worker requeues trials whose lease expired (leases last longer)
PRESENCE_SECONDS = 5.0
STORE_PATIENCE_SECONDS = 600.0  # how long a worker rides out a store outage before giving up

Objective = Callable[..., dict[str, Any]]


def retrying(call: Callable[[], Any], what: str, patience: float = STORE_PATIENCE_SECONDS) -> Any:
    """Run a store operation, riding out a store outage (server restart, network blip) for a while:
    a worker must not die, nor lose a finished trial, because the database blinked."""
    delay, deadline = 0.5, time.monotonic() + patience
    while True:
        try:
            return call()
        except Exception as exc:
            if not is_store_error(exc):
                raise
            if time.monotonic() > deadline:
                raise StoreError(f"the job store has been unreachable for {patience:.0f}s while {what}: "
                                 f"{describe(exc)}") from None
            print(f"worker: store error while {what} ({describe(exc)}); retrying in {delay:.1f}s", flush=True)
            time.sleep(delay)
            delay = min(30.0, delay * 2)


class Stopped(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so a running trial unwinds at once."""


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def pin_gpu(gpu: str) -> None:
    """Make only one GPU (or none, with -1) visible; must run before TensorFlow is imported."""
    if gpu != "":
        if "tensorflow" in sys.modules:
            raise WorkerError("--gpu must be applied before TensorFlow is imported")
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def import_objective(name: str) -> Objective:
    module_name, _, function_name = name.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise WorkerError(f"cannot import the objective {name!r} ({exc}); is the same hks version installed "
                          "on this machine as on the master?") from None
    if not callable(function):
        raise WorkerError(f"objective {name!r} is not a function")
    return function


def _wait_for_experiment(store: p.JobStore, exp_key: str, idle_timeout: float) -> p.Experiment:
    started, said = time.monotonic(), False
    while (experiment := store.get_experiment(exp_key)) is None:
        if not said:
            print(f"worker: waiting for a master to create experiment {exp_key!r} in {store.url}", flush=True)
            said = True
        if idle_timeout and time.monotonic() - started > idle_timeout:
            raise WorkerError(f"no experiment {exp_key!r} in {store.url} after {idle_timeout:g}s: start the master "
                              "first, or check --exp-key/EXPERIMENT_NAME")
        time.sleep(IDLE_POLL_MAX)
    return experiment


def check_experiment(experiment: p.Experiment, space_name: str, objective_name: str) -> tuple[Any, Objective]:
    """This worker's space and objective, refused unless they are the experiment's."""
    from hks.space import fingerprint, load_space

    if objective_name != experiment.objective:
        raise WorkerError(f"this worker runs objective {objective_name!r} but experiment {experiment.exp_key!r} "
                          f"uses {experiment.objective!r}: start the worker with --objective {experiment.objective}")
    space = load_space(space_name, experiment.settings.get("dataset"))
    mine = fingerprint(space)
    if mine != experiment.fingerprint:
        same_name = space_name == experiment.space
        hint = ("the space's code differs from the master's: install the same version on both machines" if same_name
                else f"start the worker with --space {experiment.space}")
        raise WorkerError(f"this worker's search space {space_name!r} (fingerprint {mine}) is not experiment "
                          f"{experiment.exp_key!r}'s {experiment.space!r} ({experiment.fingerprint}): {hint}")
    return space, import_objective(objective_name)


def trial_settings(experiment: p.Experiment, local: Settings) -> Settings:
    """The master's settings, with this machine's paths, threads and GPU."""
    merged = config.Settings.from_dict(experiment.settings)
    return merged.replace(**{name: getattr(local, name) for name in LOCAL_SETTINGS})


class Heartbeat(threading.Thread):
    """Renews a job's lease every quarter lease until stopped; notes when the lease was lost."""

    def __init__(self, store: p.JobStore, job: p.Job, lease_seconds: float, presence: p.WorkerInfo):
        super().__init__(daemon=True, name=f"heartbeat-{job.tid}")
        self.store, self.job, self.lease_seconds, self.presence = store, job, lease_seconds, presence
        self.interval = max(0.1, lease_seconds / 4)
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                if not self.store.heartbeat(self.job, self.lease_seconds):
                    self.lost = True
                    print(f"worker: lost the lease of trial {self.job.tid} (it was requeued)", flush=True)
                    return
                self.presence.last_seen = time.time()
                self.store.touch_worker(self.presence)
            except Exception as exc:  # a store hiccup: try again next beat, the lease has slack
                print(f"worker: heartbeat failed ({type(exc).__name__}), retrying", flush=True)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


@dataclass
class Worker:
    """One worker process's loop over one experiment."""

    store: p.JobStore
    experiment: p.Experiment
    settings: Settings
    space: Any
    objective: Objective
    worker_id: str = field(default_factory=new_worker_id)
    oracle: Any = None  # hks.oracle.Oracle: asked after each epoch whether to prune (None: never)
    quiet: bool = False  # the in-process runner prints its own lines
    trials_run: int = 0

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    @property
    def exp_key(self) -> str:
        return self.experiment.exp_key

    def presence(self, state: str, tid: int | None = None) -> p.WorkerInfo:
        return p.WorkerInfo(self.worker_id, self.exp_key, state, tid, time.time())

    def run(self, max_trials: int = 0) -> int:
        """Serve trials until idle for ``idle_timeout`` seconds (0: forever) or ``max_trials`` are run."""
        print(f"worker {self.worker_id}: serving experiment {self.exp_key!r} from {self.store.url}", flush=True)
        progress.set_worker_label(self.worker_id)
        idle_since, poll, last_touch, last_sweep = time.monotonic(), IDLE_POLL_MIN, 0.0, -SWEEP_SECONDS
        try:
            while not max_trials or self.trials_run < max_trials:
                if time.monotonic() - last_sweep >= SWEEP_SECONDS:
                    retrying(lambda: self.store.requeue_expired(self.exp_key, self.settings.max_attempts),
                             "requeueing lost trials")
                    last_sweep = time.monotonic()
                job = retrying(lambda: self.store.reserve(self.exp_key, self.worker_id, self.settings.lease_seconds),
                               "reserving a trial")
                if job is not None:
                    self.run_job(job)
                    idle_since, poll = time.monotonic(), IDLE_POLL_MIN
                    continue
                idle = time.monotonic() - idle_since
                if self.settings.idle_timeout and idle >= self.settings.idle_timeout:
                    print(f"worker {self.worker_id}: idle for {idle:.0f}s, exiting after {self.trials_run} trials",
                          flush=True)
                    break
                if time.monotonic() - last_touch > PRESENCE_SECONDS:
                    retrying(lambda: self.store.touch_worker(self.presence("idle")), "announcing this worker")
                    last_touch = time.monotonic()
                time.sleep(poll)
                poll = min(IDLE_POLL_MAX, poll * 1.5)
        finally:
            try:
                self.store.remove_worker(self.worker_id)
            except Exception as exc:  # leaving: the record expires by itself
                print(f"worker: could not remove its presence record ({type(exc).__name__})", flush=True)
        return self.trials_run

    def run_job(self, job: p.Job) -> None:
        from hyperopt import space_eval

        point = space_eval(self.space, job.vals())
        presence = self.presence("busy", job.tid)
        retrying(lambda: self.store.touch_worker(presence), "announcing this worker")
        self.say(f"worker {self.worker_id}: trial {job.tid} (attempt {job.attempts})")
        heartbeat = Heartbeat(self.store, job, self.settings.lease_seconds, presence)
        heartbeat.start()
        try:
            result = self._evaluate(job, point)
        except BaseException:  # Ctrl-C, SIGTERM, or a problem with this worker's setup: hand it back
            heartbeat.stop()
            released = retrying(lambda: self.store.release(job), f"releasing trial {job.tid}", patience=10.0)
            self.say(f"worker {self.worker_id}: trial {job.tid} {'released' if released else 'was no longer ours'}")
            raise
        heartbeat.stop()
        result = {**res.to_jsonable(result), "tid": job.tid, "worker": self.worker_id, "attempt": job.attempts}
        if retrying(lambda: self.store.complete(job, result), f"writing the result of trial {job.tid}"):
            self.trials_run += 1
            self.say(f"worker {self.worker_id}: trial {job.tid} {result.get('status')} loss {result.get('loss')}")
        else:
            self._discard(result)
            print(f"worker {self.worker_id}: trial {job.tid} was requeued while running (lease lost): "
                  "its result is discarded", flush=True)

    def _discard(self, result: dict[str, Any]) -> None:
        """Remove the files of a result the store refused, so each trial has one JSON result."""
        paths = [Path(self.settings.results_dir) / f"{result.get('model_name')}{res.RESULT_SUFFIX}"]
        if result.get("weights_file"):
            paths.append(Path(result["weights_file"]))
        for path in paths:
            path.unlink(missing_ok=True)

    def _evaluate(self, job: p.Job, point: dict[str, Any]) -> dict[str, Any]:
        metrics: list[dict[str, Any]] = []

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            metrics.append({"epoch": epoch + 1, "time": time.time(), **logs})
            try:
                self.store.push_metrics(job, metrics)
            except Exception as exc:  # metrics are a convenience: never lose the trial for them
                print(f"worker: could not store epoch metrics ({type(exc).__name__})", flush=True)

        def should_prune(_epoch: int, logs: dict[str, float]) -> bool:
            if self.oracle is None:
                return False
            values = [m.get("val_fine_accuracy") for m in metrics if m.get("val_fine_accuracy") is not None]
            return self.oracle.should_prune(job.tid, values)

        return call_objective(self.objective, point, settings=self.settings, tid=job.tid, on_epoch=on_epoch,
                              should_prune=should_prune)


def start_worker(local: Settings, *, space_name: str | None = None, objective_name: str | None = None) -> Worker:
    """Connect, wait for the experiment and check it: a ready :class:`Worker` (or a one-line error)."""
    check_settings(local)
    url = store_url(local)
    if not url:
        raise WorkerError("a worker needs a job store: pass --store URL (or set HKS_STORE, or MONGO_DB_HOST)")
    pin_gpu(local.gpu)
    store = open_store(url)
    experiment = _wait_for_experiment(store, local.experiment_name, local.idle_timeout)
    space, objective = check_experiment(experiment, space_name or experiment.space,
                                        objective_name or experiment.objective)
    settings = trial_settings(experiment, local)
    if getattr(objective, "__module__", "") == "hks.objective":
        # Import TensorFlow and cap its threads now, not while holding the first trial's lease.
        from hks.objective import configure_threads

        configure_threads(settings.threads)
        import keras  # noqa: F401
    return Worker(store, experiment, settings, space, objective)


def _raise_stopped(signum, _frame) -> None:
    raise Stopped(f"signal {signum}")


def _explicit(args: argparse.Namespace, name: str) -> str | None:
    """A flag or environment value the user gave (None: use the experiment's)."""
    field_ = {f.name: f for f in config.Settings.__dataclass_fields__.values()}[name]
    return getattr(args, name, None) or os.environ.get(field_.metadata["env"]) or None


def worker_command(args: argparse.Namespace) -> int:
    local = config.resolve({k: getattr(args, k, None) for k in WORKER_FLAGS})
    signal.signal(signal.SIGTERM, _raise_stopped)
    worker = None
    try:
        worker = start_worker(local, space_name=_explicit(args, "space"),
                              objective_name=_explicit(args, "objective"))
        worker.run(max_trials=args.max_trials)
    except Stopped:
        print("worker: stopped by SIGTERM", flush=True)
        return 143
    except KeyboardInterrupt:
        print("worker: interrupted", flush=True)
        return 130
    finally:
        if worker is not None:
            worker.store.close()
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "worker", help="serve the trials of a distributed search", description=__doc__.split("\n\n")[0])
    add_worker_arguments(parser)
    parser.set_defaults(func=worker_command)


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    config.add_arguments(parser, WORKER_FLAGS)
    parser.add_argument("--exp-key", dest="experiment_name", default=None, help="same as --experiment-name")
    parser.epilog = "--space and --objective default to the experiment's, and are checked against it when given."
    parser.add_argument("--max-trials", type=int, default=0, help="exit after this many trials (0: no limit)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hks.worker", description=__doc__.split("\n\n")[0])
    add_worker_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return worker_command(args)
    except HksError as exc:
        print(f"hks: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
