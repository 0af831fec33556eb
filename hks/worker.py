"""A worker: reserve a trial from the job store, train it while a heartbeat renews its lease,
write its result and per-epoch metrics, repeat.

``python -m hks worker --store URL --exp-key NAME`` (or ``python -m hks.worker``). The
objective is imported by name and the space rebuilt from its name, both checked against the
experiment record (no code travels through the store). SIGTERM or Ctrl-C releases the running
trial and exits within seconds (:mod:`hks.stopping`); a worker killed outright stops renewing its
lease and the trial is requeued by whoever looks next. A worker whose lease was lost stops training
at the next epoch boundary; one past ``--trial-time-limit`` fails its trial. A worker with nothing
to do waits (``--idle-timeout``, default forever) and exits when the master marks the experiment
finished, or, started by ``--workers N``, when its master dies.
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
from typing import Any, TypeVar

from hks import config, progress
from hks import results as res
from hks.checkpoint import remove as remove_checkpoint
from hks.checkpoint import trial_checkpoint
from hks.config import Settings
from hks.errors import HksError, StoreError, TrialAbandoned, WorkerError
from hks.evaluation import call_objective
from hks.objective import save_result
from hks.stopping import Stopped, Stopper
from hks.store import check_settings, open_store, store_url
from hks.store import protocol as p
from hks.store.retry import OutageNotice, call_quietly, retrying
from hks.trial_process import call_in_fresh_process, wants_fresh_process

# Settings a worker takes from its own flags and environment; all others come from the experiment.
LOCAL_SETTINGS = ("store", "mongo_db_host", "mongo_db_port", "experiment_name", "data_dir", "download",
                  "threads", "gpu", "results_dir", "idle_timeout", "store_patience")
WORKER_FLAGS = LOCAL_SETTINGS + ("space", "objective")
IDLE_POLL_MIN, IDLE_POLL_MAX = 0.02, 1.0
SWEEP_SECONDS = 1.0  # how often a worker requeues trials whose lease expired (leases last longer)
PRESENCE_SECONDS = 5.0
FINISHED_CHECK_SECONDS = 2.0  # how often an idle worker looks whether its experiment is finished
RELEASE_PATIENCE = 5.0  # a stopping worker does not wait longer than this to hand its trial back
PARENT_PID_ENV = "HKS_PARENT_PID"  # set by --workers N: the worker exits when this process is gone
TIME_LIMIT_GRACE_SECONDS = 30.0  # a trial past its time limit has this long to reach an epoch boundary
NOTICE = OutageNotice("worker")

Objective = Callable[..., dict[str, Any]]
T = TypeVar("T")


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


def stoppable(call: Callable[[], T], what: str, patience: float, stopper: Stopper) -> T:
    """A store call that rides out an outage, but gives way at once to a stop request (a call already
    under way, such as completing a finished trial, is not abandoned)."""
    try:
        return retrying(call, what, patience, notice=NOTICE, stop=stopper.requested.is_set)
    except StoreError:
        stopper.check()
        raise


def _wait_for_experiment(store: p.JobStore, local: Settings, stopper: Stopper) -> p.Experiment:
    exp_key, idle_timeout, started, said = local.experiment_name, local.idle_timeout, time.monotonic(), False
    while (experiment := stoppable(lambda: store.get_experiment(exp_key), "reading the experiment",
                                   local.store_patience, stopper)) is None:
        stopper.check()
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
    from hks.experiment import IDENTITY_KEY, code_fingerprint
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
        raise WorkerError(f"this worker's search space {space_name!r} (fingerprint {mine}) is not the one of "
                          f"experiment {experiment.exp_key!r}, {experiment.space!r} ({experiment.fingerprint}): {hint}")
    objective = import_objective(objective_name)
    recorded = (experiment.settings.get(IDENTITY_KEY) or {}).get("objective_fingerprint")
    if recorded and code_fingerprint(objective) != recorded:
        raise WorkerError(f"this worker's objective {objective_name!r} has other code (fingerprint "
                          f"{code_fingerprint(objective)}) than the one of experiment {experiment.exp_key!r} "
                          f"({recorded}): install the master's version of its module on this machine")
    return space, objective


def trial_settings(experiment: p.Experiment, local: Settings) -> Settings:
    """The master's settings, with this machine's paths, threads and GPU."""
    merged = config.Settings.from_dict(experiment.settings)
    return merged.replace(**{name: getattr(local, name) for name in LOCAL_SETTINGS})


def parent_alive(parent_pid: int) -> bool:
    """False once the master that started this worker (``--workers N``) is gone."""
    return not parent_pid or os.getppid() == parent_pid


class Heartbeat(threading.Thread):
    """Renews a job's lease every quarter lease until stopped; flags a lost lease (the training stops
    at its next epoch boundary), fails the trial past its time limit, and stops the worker when its
    master (``--workers N``) died."""

    def __init__(self, worker: Worker, job: p.Job, on_time_limit: Callable[[], None]):
        super().__init__(daemon=True, name=f"heartbeat-{job.tid}")
        self.worker, self.job, self.on_time_limit = worker, job, on_time_limit
        self.lease_seconds = worker.settings.lease_seconds
        self.interval = max(0.1, self.lease_seconds / 4)
        self.started = time.monotonic()
        self.lost = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        limit = self.worker.settings.trial_time_limit
        while not self._stop_event.wait(self.interval):
            if not parent_alive(self.worker.parent_pid):  # as if SIGTERMed: release the trial and exit
                os.kill(os.getpid(), signal.SIGTERM)
            if limit and time.monotonic() - self.started > limit:
                self.lost = True
                self.on_time_limit()
                return
            number = progress.trial_number(self.job.tid)  # counted from 1, as every other line counts trials
            renewed = call_quietly(lambda: self.worker.store.heartbeat(self.job, self.lease_seconds),
                                   f"renewing the lease of trial {number}", NOTICE)
            if renewed is False:
                self.lost = True
                print(f"worker: lost the lease of trial {number} (it was requeued): stopping its training "
                      "at the next epoch", flush=True)
                return
            if renewed:
                self.announce()

    def announce(self) -> None:
        presence = self.worker.presence("busy", self.job.tid)
        call_quietly(lambda: self.worker.store.touch_worker(presence), "announcing this worker", NOTICE)

    def stop(self) -> None:
        self._stop_event.set()
        if self is not threading.current_thread():
            self.join()


def requeue_lost(store: p.JobStore, exp_key: str, settings: Settings) -> None:
    """Requeue the trials whose worker was lost; one failed for good (tried ``--max-attempts`` times) has
    its checkpoint removed here, where that is decided, as nobody will resume it (where the checkpoint is
    on this machine: a worker elsewhere keeps its own until a search there ends)."""
    for job in store.requeue_expired(exp_key, settings.max_attempts):
        if p.gave_up(job, settings.max_attempts):
            remove_checkpoint(trial_checkpoint(settings, exp_key, job.tid))


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
    stopper: Stopper = field(default_factory=Stopper)
    parent_pid: int = field(default_factory=lambda: int(os.environ.get(PARENT_PID_ENV) or 0))
    current: p.Job | None = None

    def __post_init__(self) -> None:
        self.stopper.on_deadline = self.release_current

    def about(self, job: p.Job) -> str:
        """How log lines name a trial: numbered from 1, as the progress lines and the report do."""
        return f"worker {self.worker_id}: trial {progress.trial_number(job.tid)}"

    def say(self, line: str) -> None:
        if not self.quiet:
            print(line, flush=True)

    @property
    def exp_key(self) -> str:
        return self.experiment.exp_key

    def presence(self, state: str, tid: int | None = None) -> p.WorkerInfo:
        return p.WorkerInfo(self.worker_id, self.exp_key, state, tid, time.time())

    def _retrying(self, call: Callable[[], T], what: str) -> T:
        return stoppable(call, what, self.settings.store_patience, self.stopper)

    def run(self, max_trials: int = 0) -> int:
        """Serve trials until idle for ``idle_timeout`` seconds (0: forever), ``max_trials`` are run,
        the experiment is finished, or this worker's master (``--workers N``) is gone."""
        print(f"worker {self.worker_id}: serving experiment {self.exp_key!r} from {self.store.url}", flush=True)
        progress.set_worker_label(self.worker_id)
        idle_since, poll = time.monotonic(), IDLE_POLL_MIN
        last_touch = last_sweep = last_look = -float("inf")
        try:
            while not max_trials or self.trials_run < max_trials:
                self.stopper.check()
                if time.monotonic() - last_sweep >= SWEEP_SECONDS:
                    self._retrying(lambda: requeue_lost(self.store, self.exp_key, self.settings),
                                   "requeueing lost trials")
                    last_sweep = time.monotonic()
                if time.monotonic() - last_look >= FINISHED_CHECK_SECONDS:  # after each trial, and while idle:
                    if self._should_leave():  # trials queued beyond a finished search's budget are not run
                        break
                    last_look = time.monotonic()
                job = self._retrying(lambda: self.store.reserve(self.exp_key, self.worker_id,
                                                                self.settings.lease_seconds), "reserving a trial")
                if job is not None:
                    self.run_job(job)
                    idle_since, poll, last_look = time.monotonic(), IDLE_POLL_MIN, -float("inf")
                    continue
                idle = time.monotonic() - idle_since
                if self.settings.idle_timeout and idle >= self.settings.idle_timeout:
                    done = progress.trials(self.trials_run)
                    print(f"worker {self.worker_id}: idle for {idle:.0f}s, exiting after {done}", flush=True)
                    break
                if time.monotonic() - last_touch > PRESENCE_SECONDS:
                    self._retrying(lambda: self.store.touch_worker(self.presence("idle")), "announcing this worker")
                    last_touch = time.monotonic()
                time.sleep(poll)
                poll = min(IDLE_POLL_MAX, poll * 1.5)
        finally:
            call_quietly(lambda: self.store.remove_worker(self.worker_id), "removing its presence record", NOTICE)
        return self.trials_run

    def _should_leave(self) -> bool:
        """The experiment is finished (the master said so), or the master that started us is gone."""
        if not parent_alive(self.parent_pid):
            print(f"worker {self.worker_id}: its master (pid {self.parent_pid}) is gone; exiting", flush=True)
            return True
        experiment = self._retrying(lambda: self.store.get_experiment(self.exp_key), "reading the experiment")
        if experiment is None or experiment.finished_at is not None:
            print(f"worker {self.worker_id}: experiment {self.exp_key!r} is "
                  f"{'finished' if experiment else 'gone'}; exiting after {progress.trials(self.trials_run)}",
                  flush=True)
            return True
        return False

    def run_job(self, job: p.Job) -> None:
        from hyperopt import space_eval

        point = space_eval(self.space, job.vals())
        self.current = job
        self.say(f"{self.about(job)} (attempt {job.attempts})")
        heartbeat = Heartbeat(self, job, lambda: self._fail_past_time_limit(job, point))
        heartbeat.start()
        try:
            self._retrying(lambda: self.store.touch_worker(self.presence("busy", job.tid)), "announcing this worker")
            result = self._evaluate(job, point, heartbeat)
        except TrialAbandoned as exc:
            heartbeat.stop()
            self.current = None
            print(f"{self.about(job)} stopped ({exc})", flush=True)
            return
        except BaseException:  # SIGTERM, Ctrl-C, or a problem with this worker's setup: hand it back
            heartbeat.stop()
            self.release_current()
            raise
        heartbeat.stop()
        self.current = None
        self.complete(job, result)

    def complete(self, job: p.Job, result: dict[str, Any]) -> bool:
        """The fenced completion, then (only if it was accepted) the trial's one JSON result."""
        result = {**res.to_jsonable(result), "tid": job.tid, "worker": self.worker_id, "attempt": job.attempts}
        number = progress.trial_number(job.tid)
        try:
            completed = self._retrying(lambda: self.store.complete(job, result),
                                       f"writing the result of trial {number}")
        except Stopped:  # stopped while the store was out: say what becomes of the trial, never lose it silently
            print(f"{self.about(job)}: stopped before its result could be written (the store is unreachable); it "
                  "runs again once its lease expires", flush=True)
            raise
        if completed:
            save_result(result, self.settings.results_dir)
            if not result.get("paused"):  # a paused trial resumes from it when promoted
                remove_checkpoint(self.checkpoint(job))
            self.trials_run += 1
            self.say(f"{self.about(job)} {result.get('status')} loss {result.get('loss')}")
            return True
        self._discard(result)
        print(f"{self.about(job)} was requeued while running (lease lost): "
              "its result is discarded", flush=True)
        return False

    def release_current(self) -> None:
        """Hand the running trial back to the queue (the worker is stopping); bounded in time."""
        job, self.current = self.current, None
        if job is None:
            return
        try:
            released = retrying(lambda: self.store.release(job), f"releasing trial {progress.trial_number(job.tid)}",
                                RELEASE_PATIENCE, notice=NOTICE)
        except StoreError as exc:
            print(f"{self.about(job)}: could not release it ({exc}); it is requeued when its "
                  "lease expires", flush=True)
            return
        self.say(f"{self.about(job)} {'released' if released else 'was no longer ours'}")

    def _fail_past_time_limit(self, job: p.Job, point: dict[str, Any]) -> None:
        """Runs in the heartbeat thread: fail the trial; its training stops at the next epoch boundary,
        and a process still stuck in it a grace period later is ended (it would never serve again)."""
        limit = self.settings.trial_time_limit
        error = f"TrialTimeLimit: still running after --trial-time-limit {limit:g}s"
        print(f"{self.about(job)} {error}; failing it", flush=True)
        failed = {"status": res.STATUS_FAIL, "loss": None, "space": point, "model_name": res.make_model_name(None),
                  "error": error, "error_type": "TrialTimeLimit", "history": {}, "finished_at": time.time()}
        try:
            self.complete(job, failed)
        except HksError as exc:
            print(f"{self.about(job)}: could not fail it ({exc})", flush=True)
        threading.Thread(target=self._end_if_still_hung, args=(job,), daemon=True).start()

    def _end_if_still_hung(self, job: p.Job) -> None:
        time.sleep(max(TIME_LIMIT_GRACE_SECONDS, self.settings.lease_seconds))
        if self.current is job:
            print(f"{self.about(job)} is hung past its time limit; exiting", flush=True)
            os._exit(3)

    def _discard(self, result: dict[str, Any]) -> None:
        """Remove the files of a result the store refused, so each trial has one JSON result."""
        paths = [Path(self.settings.results_dir) / f"{result.get('model_name')}{res.RESULT_SUFFIX}"]
        if result.get("weights_file"):
            paths.append(Path(result["weights_file"]))
        for path in paths:
            path.unlink(missing_ok=True)

    def _evaluate(self, job: p.Job, point: dict[str, Any], heartbeat: Heartbeat) -> dict[str, Any]:
        metrics: list[dict[str, Any]] = []

        def on_epoch(epoch: int, logs: dict[str, float]) -> None:
            self.stopper.check()  # a stop the objective's own code swallowed still ends the trial here
            if heartbeat.lost:
                raise TrialAbandoned(f"no longer this worker's trial, at epoch {epoch + 1}")
            metrics.append({"epoch": epoch + 1, "time": time.time(), **logs})
            with self.stopper.shielded():  # metrics are a convenience: never lose the trial for them
                call_quietly(lambda: self.store.push_metrics(job, metrics), "storing epoch metrics", NOTICE)

        should_prune = self.oracle.prune_hook(job.tid, judged=len(job.metrics)) if self.oracle is not None else None
        saved = self.checkpoint(job)
        checkpoint = str(saved) if saved is not None else None
        with self.stopper.interrupting():
            if self.fresh_processes:
                return call_in_fresh_process(self.objective, point, self.settings, tid=job.tid, on_epoch=on_epoch,
                                             should_prune=should_prune, check=self.stopper.check,
                                             checkpoint=checkpoint)
            return call_objective(self.objective, point, settings=self.settings, tid=job.tid, on_epoch=on_epoch,
                                  should_prune=should_prune, checkpoint=checkpoint)

    def checkpoint(self, job: p.Job) -> Path | None:
        """Where the trial keeps its checkpoint (kept when the worker stops or dies, so a retry resumes)."""
        return trial_checkpoint(self.settings, self.exp_key, job.tid)

    @property
    def fresh_processes(self) -> bool:
        """Each trial in its own process (``--trial-process``, :mod:`hks.trial_process`)."""
        return wants_fresh_process(self.settings.trial_process, self.objective)


def start_worker(local: Settings, *, space_name: str | None = None, objective_name: str | None = None,
                 stopper: Stopper | None = None) -> Worker:
    """Connect, wait for the experiment and check it: a ready :class:`Worker` (or a one-line error)."""
    check_settings(local)
    url = store_url(local)
    if not url:
        raise WorkerError("a worker needs a job store: pass --store URL (or set HKS_STORE, or MONGO_DB_HOST)")
    pin_gpu(local.gpu)
    stopper = stopper or Stopper()
    store = open_store(url, patience=local.store_patience)
    experiment = _wait_for_experiment(store, local, stopper)
    space, objective = check_experiment(experiment, space_name or experiment.space,
                                        objective_name or experiment.objective)
    settings = trial_settings(experiment, local)
    res.make_results_dir(settings.results_dir)
    if getattr(objective, "__module__", "") == "hks.objective" and not wants_fresh_process(settings.trial_process,
                                                                                            objective):
        # Import TensorFlow and cap its threads now, not while holding the first trial's lease.
        from hks.objective import configure_tensorflow

        configure_tensorflow(settings)
        import keras  # noqa: F401
    oracle = pruning_oracle(store, settings)
    return Worker(store, experiment, settings, space, objective, stopper=stopper, oracle=oracle)


def pruning_oracle(store: p.JobStore, settings: Settings) -> Any:
    """The oracle a worker asks after each epoch whether to stop (None without ``--prune``); it reads the
    other trials' curves from the store, so every worker decides as the master would."""
    if settings.prune == "none":
        return None
    from hks.oracle import Oracle
    from hks.pruners import make_pruner

    return Oracle(store, settings.experiment_name, None, make_pruner(settings))


def _explicit(args: argparse.Namespace, name: str) -> str | None:
    """A flag or environment value the user gave (None: use the experiment's)."""
    field_ = {f.name: f for f in config.Settings.__dataclass_fields__.values()}[name]
    return getattr(args, name, None) or os.environ.get(field_.metadata["env"]) or None


def worker_command(args: argparse.Namespace) -> int:
    local = config.resolve({k: getattr(args, k, None) for k in WORKER_FLAGS})
    stopper = Stopper()
    stopper.install()
    worker = None
    try:
        worker = start_worker(local, space_name=_explicit(args, "space"),
                              objective_name=_explicit(args, "objective"), stopper=stopper)
        worker.run(max_trials=args.max_trials)
    except Stopped as exc:
        print(f"worker: stopped by signal {exc.signum}", flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("worker: interrupted", flush=True)
        return 130
    finally:
        if worker is not None:
            worker.store.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
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
