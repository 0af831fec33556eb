"""A study: one search over a space and an objective, with its storage, oracle and runner.

This is hks's public API (``hks.optimize``, ``hks.Study``) and what ``python -m hks search`` runs:

* the **storage** is ``results.pkl`` (no server) or a job store URL (``--store``, ``--workers``);
* the **oracle** asks the sampler of ``--algo`` for points and the pruner whether to stop;
* the **runner** trains trials in this process, or keeps workers supplied (``--workers N``, or
  workers started by hand on other machines).

Every combination works, and each resumes from its storage: run the same thing again.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from hks import experiment as exp
from hks import plotting
from hks import results as res
from hks.checkpoint import kept_note
from hks.config import Settings, is_auto
from hks.errors import ConfigError
from hks.evaluation import Objective, as_result
from hks.objective import check_setup
from hks.oracle import Oracle
from hks.progress import SearchProgress, next_step_line, trial_number, trials
from hks.samplers import make_sampler, startup_trials
from hks.space import load_space
from hks.store import check_settings, is_store_url, open_store, store_url
from hks.store import protocol as p
from hks.store.hyperopt_docs import finished_result

if TYPE_CHECKING:
    from hks.pruners import Pruner

BUILTIN_OBJECTIVE = "hks.objective:run_trial"
LIVE_REPORT_SECONDS = 60.0


ASK_TELL_OWNER = "ask-tell"


@dataclass
class Trial:
    """A trial handed out by :meth:`Study.ask`: report its outcome with :meth:`Study.tell`."""

    tid: int
    point: dict[str, Any]
    job: p.Job
    asker: int = 0  # which Study asked it (its id), so that only that one is told


def import_objective(name: str) -> Objective:
    from hks.worker import import_objective as by_name

    return by_name(name)


def objective_name(function: Callable[..., Any]) -> str:
    """How the records name an objective (workers import it by this name)."""
    return f"{function.__module__}:{getattr(function, '__qualname__', type(function).__name__)}"


def resolve_base_lr(settings: Settings, saved_settings: dict[str, Any]) -> Settings:
    """Settings with a numeric ``base_lr``: ``auto`` is calibrated once (autoHyper), then reused."""
    if not is_auto(settings.base_lr):
        return settings
    saved = str(saved_settings.get("base_lr", "auto"))
    if not is_auto(saved):
        print(f"base learning rate {saved} (calibrated by autoHyper when this search started)", flush=True)
        return settings.replace(base_lr=saved)
    from hks.autolr.calibrate import calibrate_base_lr

    print("calibrating the base learning rate with autoHyper (--base-lr auto)", flush=True)
    chosen = calibrate_base_lr(settings)
    print(f"base learning rate {chosen:.6g} chosen by autoHyper", flush=True)
    return settings.replace(base_lr=repr(float(chosen)))


def _search_parts(settings: Settings, space: Any, objective: Objective | None) -> tuple[Settings, Any, Objective]:
    """The settings, space and objective of a search: ``--algo gp`` searches ``--gp-space`` on its fixed model,
    unless a space of its own is given (as an object, or by name)."""
    if settings.algo == "gp" and space is None and settings.space == Settings().space:
        settings = settings.replace(space=settings.gp_space)
        if objective is None and settings.objective == BUILTIN_OBJECTIVE:
            settings = settings.replace(objective=_fixed_objective())
    if objective is None:
        objective = import_objective(settings.objective)
    else:
        settings = settings.replace(objective=objective_name(objective))
    if space is None:
        space = load_space(settings.space, settings.dataset)
    return settings, space, objective


def _flat_parts(space: Any) -> tuple[Any, Any]:
    """(the hyperopt space, the flat space or None): a flat space (``hks.bayesopt`` Float/Int/Choice) is
    searched as hyperopt expressions by any sampler, and by ``--algo gp`` as itself."""
    from hks.bayesopt.flat import is_flat_space, to_hyperopt

    return (to_hyperopt(space), space) if is_flat_space(space) else (space, None)


class Study:
    """Open (or resume) a search; :meth:`optimize` runs it, :meth:`ask` / :meth:`tell` let you drive it."""

    def __init__(self, settings: Settings, *, space: Any = None, objective: Objective | None = None):
        from hks.trial_process import check_trial_process

        check_settings(settings)
        settings, self.space, self.objective = _search_parts(settings, space, objective)
        self.space, self.flat_space = _flat_parts(self.space)
        check_trial_process(settings.trial_process, self.objective)
        self.url = store_url(settings)
        if self.url and objective is not None and not _importable(settings.objective):
            raise ConfigError(f"workers import the objective by name, and {settings.objective!r} cannot be imported: "
                              "define it at the top level of a module and pass objective='module:function', or "
                              "store the trials in a file (storage='results.pkl') to run them in this process")
        if self.url and space is not None:
            _check_space_name(settings, self.space)
        if settings.algo == "gp" and settings.base_lr and is_auto(settings.base_lr):
            raise ConfigError("--base-lr auto does not apply to --algo gp, which searches the learning rate itself")
        sampler, pruner = make_sampler(settings, self.space, self.flat_space), _make_pruner(settings)  # checked
        if self._trains_cifar(settings) and (not self.url or settings.workers):
            check_setup(settings, load=not self.url)  # no dataset: stop before anything is written, a lock included
        # a master started beside its database (docker-compose) waits for it, as workers do
        self.store = open_store(self.url, patience=settings.store_patience) if self.url else \
            _open_trials_file(settings)
        try:
            settings = self._adopt_experiment(settings)
            saved = self.store.get_experiment(settings.experiment_name)
            self._last_algo = saved.settings.get("algo") if saved is not None else None
            self.settings = resolve_base_lr(settings, saved.settings if saved is not None else {})
            res.make_results_dir(self.settings.results_dir)
            self.experiment = exp.register(self.store, self.settings, self.space, self.objective)
            self.oracle = Oracle(self.store, self.exp_key, sampler, pruner, _result_view(self.settings))
        except BaseException:
            self.store.close()
            raise
        self.oracle.refresh()
        self.announced = {job.tid for job in self.oracle.finished()}
        self._asked: dict[int, Trial] = {}  # asked here and not told yet
        self._reported_at = time.monotonic()  # the first live report after LIVE_REPORT_SECONDS of searching
        self.progress = SearchProgress(self.settings.max_evals, [self._result(j) for j in self.oracle.finished()])
        self._write_missing_results()

    def _trains_cifar(self, settings: Settings) -> bool:
        """Whether trials train on the dataset (hks's models or a ``keras_objective``), whose set-up is checked
        before anything is written."""
        from hks.evaluation import keras_objective

        return settings.objective in (BUILTIN_OBJECTIVE, _fixed_objective()) or isinstance(self.objective,
                                                                                          keras_objective)

    @property
    def exp_key(self) -> str:
        return self.settings.experiment_name

    def _adopt_experiment(self, settings: Settings) -> Settings:
        """A ``results.pkl`` holds one search: resume it whatever ``EXPERIMENT_NAME`` says now."""
        keys = [] if self.url else self.store.experiment_keys()
        if not keys:
            return settings
        if keys[0] != settings.experiment_name:
            print(f"note: {settings.trials_file} holds experiment {keys[0]!r} and goes on with it (a trials file holds "
                  f"one search); for a new search named {settings.experiment_name!r}, pass another --trials-file "
                  "and --results-dir", flush=True)
        return settings.replace(experiment_name=keys[0])

    # --- reading the storage ---------------------------------------------------------------
    def _result(self, job: p.Job) -> dict[str, Any]:
        return finished_result(job, self.space)

    def sync(self) -> bool:
        """Read what changed; announce each trial that finished since. True when anything changed."""
        changed = self.oracle.refresh()
        for job in sorted(changed, key=lambda j: j.tid):
            if job.state == p.RUNNING and self.url:  # a worker took it
                self.trial_started(job)
            if job.state in p.FINAL_STATES and job.tid not in self.announced:
                self.announced.add(job.tid)
                self._announce(self._result(job))
        return bool(changed)

    def finished_count(self) -> int:
        return len(self.announced)

    @property
    def results(self) -> list[dict[str, Any]]:
        return list(self.progress.results)

    @property
    def best(self) -> dict[str, Any] | None:
        return res.best_result(self.progress.results)

    def promote(self, final: bool = False) -> bool:
        """Resume a paused trial (ASHA's promotions with ``--prune-pause``): it is queued again and its
        result and JSON go until it finishes again. ``final``: nothing else is left to run, so a thin top
        rung keeps its best (see :func:`hks.pruners.asha.promotion`). True when one was queued."""
        job = self.oracle.promote() or (self.oracle.promote(final=True) if final else None)
        if job is None:
            return False
        self.announced.discard(job.tid)
        self.progress.forget(job.tid)
        (Path(self.settings.results_dir) / f"{job.result['model_name']}{res.RESULT_SUFFIX}").unlink(missing_ok=True)
        print(f"trial {trial_number(job.tid)} promoted: resumes after epoch {job.result['pruned_at_epoch']} "
              f"(val fine acc {job.result.get('fine_best_accuracy') or 0:.4f})", flush=True)
        return True

    def budget_spent(self) -> bool:
        """Every trial of ``--max-evals`` has run as far as the pruner lets it (promotions included)."""
        return self.finished_count() >= self.settings.max_evals and self.oracle.promotion(final=True) is None

    # --- what happens to a finished trial -------------------------------------------------------
    def _announce(self, result: dict[str, Any]) -> None:
        previous = self.progress.best
        self._write_result(result)
        self.progress.record(result)
        if self.progress.best is not previous and self._draws_models():
            _note(plotting.draw_best(self.settings.results_dir, self.settings.dataset, self.progress.best["space"]))
        self._write_live_report()

    def _reports(self) -> bool:
        return self.settings.objective in (BUILTIN_OBJECTIVE, _fixed_objective())

    def _write_live_report(self) -> None:
        """The report as the search stands (queued and running trials too), at most every
        :data:`LIVE_REPORT_SECONDS`: an open page reloads itself until the search is over."""
        if not self._reports() or time.monotonic() - self._reported_at < LIVE_REPORT_SECONDS:
            return
        self._write_report()
        self._reported_at = time.monotonic()

    def _write_report(self, final: bool = False) -> str:
        """The report of the search as it stands, with its budget (and its pending trials until ``final``,
        the search over: trials queued beyond the budget are then never run); one line saying where."""
        from hks.report import safe_write_report
        from hks.report.sources import records_snapshot

        snapshot = records_snapshot(self.experiment, self.oracle.records.records(), self.settings)
        if final:
            snapshot.pending, snapshot.finished = [], True
        return safe_write_report(snapshot, self.settings, source=self.url)

    def _write_result(self, result: dict[str, Any]) -> None:
        path = Path(self.settings.results_dir) / f"{result['model_name']}{res.RESULT_SUFFIX}"
        if not path.exists():
            res.write_result(result, self.settings.results_dir)

    def _write_missing_results(self) -> None:
        """Trials that finished while no master ran still get their JSON result."""
        for result in self.progress.results:
            self._write_result(result)

    def _draws_models(self) -> bool:
        return self.settings.plots and self.settings.objective == BUILTIN_OBJECTIVE

    def trial_started(self, job: p.Job) -> None:
        """The console's start line of a trial (hks's own objective prints it in-process, with the model's size)."""
        from hyperopt import space_eval

        if self.url or not self._trains_cifar(self.settings):  # hks's training prints it, with the model's size
            self.progress.announce_start(job.tid, lambda: space_eval(self.space, job.vals()), job.owner)

    # --- running ------------------------------------------------------------------------------
    def optimize(self) -> list[dict[str, Any]]:
        """Run until ``max_evals`` trials have finished (counting earlier runs); returns every result."""
        from hks.runners.in_process import run_in_process
        from hks.runners.master import run_master

        if self.budget_spent():
            print(self.progress.describe_start(), flush=True)  # the budget is spent: says so, runs nothing
            if self.url:  # workers still waiting (their master died before the end) are told to go home
                self.store.finish_experiment(self.exp_key)
            return self.results
        self._warn_startup()
        store = f", store {self.store.url}" if self.url else ""
        print(f"{self.progress.describe_start()} (--algo {self.settings.algo}{store})", flush=True)
        if self._draws_models():
            from hks.objective import configure_tensorflow

            configure_tensorflow(self.settings)  # the demo model is TensorFlow's first allocation
            _note(plotting.draw_demo(self.settings.results_dir, self.settings.dataset))
        with _sigterm_as_interrupt():
            (run_master if self.url else run_in_process)(self)
        self.finish()
        return self.results

    def _warn_startup(self) -> None:
        s = self.settings
        if self._last_algo and self._last_algo != s.algo:  # the algorithm may change between runs: say when it does
            print(f"note: this search's last run used --algo {self._last_algo}; it goes on with --algo {s.algo} "
                  f"(give --algo {self._last_algo} to keep it)", flush=True)
        startup = startup_trials(s)
        if startup is not None and s.max_evals <= startup:
            print(f"warning: --max-evals {s.max_evals} <= {startup} start-up trials (--n-startup-trials): the sampler "
                  "never gets past its start-up phase, so no trial learns from the others", flush=True)
        if s.algo == "gp" and s.max_evals <= s.gp_init_trials:
            print(f"warning: --max-evals {s.max_evals} <= --gp-init-trials {s.gp_init_trials}: the GP never models, "
                  "so this is a quasi-random search", flush=True)
        pruner = self.oracle.pruner
        thin = pruner.budget_warning(s.max_evals) if pruner else None
        if thin:
            print(f"warning: {thin}", flush=True)

    def finish(self) -> None:
        """Say what was found and write the report."""
        best = self.best
        summary = f"best loss {best['loss']:.4f} ({best['model_name']})" if best else "no successful trial"
        if best and best.get("fine_best_accuracy") is not None:
            summary = f"best {best['fine_best_accuracy']:.4f} ({best['model_name']})"
        print(f"search done: {trials(len(self.results))}, {summary}", flush=True)
        _note(kept_note(self.settings, self.exp_key))
        if self.results and self._reports():
            print(self._write_report(final=True), flush=True)
            if best is not None:
                print(next_step_line(self.settings, self.url), flush=True)

    # --- ask and tell -------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        """Trials left in the budget (``max_evals`` counts every trial finished so far, earlier runs' too):
        what a loop of your own asks for, so that running it again resumes it rather than overruns it."""
        self.sync()
        return max(0, self.settings.max_evals - self.finished_count() - self.store.count(self.exp_key, (p.RUNNING,)))

    def ask(self) -> Trial:
        """A trial to evaluate yourself (recorded as running until you :meth:`tell` its outcome): one asked
        before and never told (its study closed first) if any, else a new one. Refused once ``max_evals``
        trials have finished or are out being evaluated."""
        from hyperopt import space_eval

        if not self.remaining:
            out = self.store.count(self.exp_key, (p.RUNNING,))
            raise ConfigError(f"the budget of {self.settings.max_evals} trials is spent (max_evals counts every "
                              f"trial so far{f', and {out} asked are not told yet' if out else ''}): tell those, "
                              "raise max_evals to ask for more, or loop over study.remaining")
        job = self.store.reserve(self.exp_key, ASK_TELL_OWNER, self.settings.lease_seconds * 1e6)
        for _ in range(3):  # none queued (or another process took the one just queued): a new suggestion
            if job is not None:
                break
            self.oracle.ask(1)
            job = self.store.reserve(self.exp_key, ASK_TELL_OWNER, self.settings.lease_seconds * 1e6)
        if job is None:
            raise ConfigError("no trial could be reserved: other processes take every suggestion of this "
                              "experiment; ask again")
        trial = Trial(job.tid, space_eval(self.space, job.vals()), job, id(self))
        self._asked[job.tid] = trial
        return trial

    def tell(self, trial: Trial, value: Any) -> dict[str, Any]:
        """Record a trial's outcome: a loss to minimise, or a result dict (``status``, ``loss``, ...)."""
        asked = self._asked.get(trial.tid)
        if asked is None or trial.asker != id(self):  # a copy of the trial (pickled, say) is told all the same
            mine = trial.asker == id(self)
            raise ConfigError(f"trial {trial.tid} was {'told already' if mine else 'not asked by this study'}: "
                              "tell each trial once, to the study that asked it")
        result = as_result(value, asked.point, trial.tid)
        if not self.store.complete(asked.job, res.to_jsonable(result)):
            raise ConfigError(f"trial {trial.tid} is not running any more (told twice?)")
        del self._asked[trial.tid]
        self.sync()
        return result

    def close(self) -> None:
        """Close the storage; trials asked and not told go back to the queue, for the next :meth:`ask`."""
        for trial in self._asked.values():
            self.store.release(trial.job)
        self._asked.clear()
        self.store.close()

    def __enter__(self) -> Study:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _check_space_name(settings: Settings, space: Any) -> None:
    """Workers build the space from its module's name: refuse a space object that name does not give."""
    from hks.errors import SpaceError
    from hks.space import fingerprint

    try:
        named = fingerprint(load_space(settings.space, settings.dataset))
    except SpaceError:
        named = None
    if named != fingerprint(space):
        raise ConfigError(f"workers build the search space from its module's name, and {settings.space!r} holds "
                          "another space than the one given: put it in a module as SPACE and name that module "
                          "(space='module', or hks.optimize(objective, 'module', ...)), or store the trials in a "
                          "file (storage='results.pkl') to run them in this process")


def _importable(name: str) -> bool:
    module, _, function = name.partition(":")
    return module != "__main__" and "<locals>" not in function


def _fixed_objective() -> str:
    from hks.bayesopt.fixed_model import FIXED_OBJECTIVE

    return FIXED_OBJECTIVE


def _make_pruner(settings: Settings) -> Pruner | None:
    if settings.prune == "none":
        return None
    from hks.pruners import make_pruner

    return make_pruner(settings)


def _result_view(settings: Settings) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """How samplers see results: a pruned trial ranks as ``--prune-sampler-loss`` says."""
    import functools

    from hks.pruners import sampler_result

    return functools.partial(sampler_result, settings=settings)


MEMORY = ":memory:"


def _open_trials_file(settings: Settings) -> p.JobStore:
    """``--trials-file``: a ``results.pkl`` (resumable), or ``:memory:`` for a search nobody resumes."""
    from hks.store.pickle_file import MemoryStore, PickleStore

    return MemoryStore() if settings.trials_file == MEMORY else PickleStore(settings.trials_file)


_NOTES_SAID: set[str] = set()


def _note(problem: str | None) -> None:
    """Print a problem once per process (a missing Graphviz would otherwise repeat at every new best)."""
    if problem and problem not in _NOTES_SAID:
        _NOTES_SAID.add(problem)
        print(f"note: {problem}", flush=True)


class _sigterm_as_interrupt:
    """SIGTERM ends a search like Ctrl-C: the running trial is released, everything finished is kept."""

    def __enter__(self) -> None:
        try:
            self.previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        except ValueError:  # not the main thread: leave signals alone
            self.previous = None

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_search(settings: Settings) -> list[dict[str, Any]]:
    """What ``python -m hks search`` (and ``hyperopt_optimize.py``) runs."""
    with Study(settings) as study:
        return study.optimize()


def optimize(objective: Objective | str, space: Any, *, max_evals: int, storage: str = "results.pkl",
             **settings: Any) -> Study:
    """Search ``space`` for the point that minimises ``objective``; returns the (closed) study.

    ``objective`` is a function of a point returning a loss (or a result dict), or its
    ``"module:function"`` name, which workers import (``workers=2``: local worker processes);
    ``space`` a hyperopt space, or the name of a module holding it as ``SPACE`` (workers import that too).
    ``storage`` is a ``results.pkl`` path, ``":memory:"`` or a store URL. Other keywords are :class:`Settings`
    fields (``algo``, ``seed``, ``results_dir``, ``workers``, ``prune``...).
    """
    fields = {"max_evals": max_evals, "plots": False, **settings}
    if is_store_url(storage):
        fields["store"] = storage
    else:
        fields["trials_file"] = storage
    base = Settings(**fields)
    if isinstance(objective, str):
        base = base.replace(objective=objective)
        objective = None
    if isinstance(space, str):  # a module holding SPACE, by name: what workers import
        base = base.replace(space=space)
        space = None
    with Study(base, space=space, objective=objective) as study:
        study.optimize()
    return study
