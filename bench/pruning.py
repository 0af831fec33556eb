#!/usr/bin/env python3
"""Pruning against no pruning and against Optuna's pruning: the same trial budget and seeds, with each pruner.

The baseline is what a user would otherwise run: ``none`` (hks's TPE without pruning) and
``optuna-median``, Optuna's default sampler and default pruner as shipped (``MedianPruner``; also
``optuna-sha``, ``optuna-hyperband``, ``optuna-none``), asked through Optuna's own study over the same
space, each of its trials trained by the same code, data and seeds as hks's (see :func:`run_optuna_search`).

Every hks search is hks's own in-process search (``hks.Study``: the TPE sampler, the oracle, in-memory
storage) over a small space on the CIFAR-10 mini archive, each trial :func:`hks.objective.run_trial`
with real TensorFlow training. With a pruner, the oracle asks it after every epoch with the other
trials' curves as stored, and the sampler sees :func:`hks.pruners.sampler_result` of a pruned trial.
Printed per pruner, over the seeds:

* best validation fine accuracy of a completed trial (mean, standard deviation, min-max);
* total trial-epochs and wall time (means) and their ratio to no pruning;
* how many trials were pruned;
* wall time until the search first reached the mean best accuracy of the unpruned searches
  (seeds that reached it, and the median time over those).

What it does not show: searches here are sequential, so asynchronous rungs fill in tid order
(with ``--workers N`` a trial meets the rung as recorded at that moment); and with a few hundred
validation images each accuracy carries several points of noise (about +-3.5 at 200 images), which
blurs every rung's ranking and inflates the best of many full-length trials (more of them finish
without pruning). The default 667 validation images (of 2,000) carry about +-1.9 and fit the run in
about 35 minutes with the three default arms; ``--dataset-size 3333 --val-fraction 0.6`` (2,000
validation images, about +-1.1) halves what every rule loses in the replay, for 30-37 minutes with two
arms (docs/pruning.md).
An Optuna arm's trials train in its own process, as an Optuna script's do, where hks's each start a
process (``--trial-process``): its wall time has no TensorFlow start per trial; compare trial-epochs
for what the pruner saves. Its sampler is Optuna's TPE (10 random start-up trials) where hks's arms
use hyperopt's (5): it measures what an Optuna user gets, sampler and pruner together.

    python bench/pruning.py [--seeds 3] [--trials 30] [--jobs 2] [--epochs 27] [--dataset-size 2000]
                            [--val-fraction 0.333]
                            [--pruners none,asha,optuna-median] [--sampler-loss ranked]
                            [--first-seed 0] [--json FILE] [--summarize FILE ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from hks.config import Settings, parse_count_or_auto  # noqa: E402

DATA_DIR = ROOT.parent / "shared" / "data" / "cifar-10-mini"
EPOCHS = 27  # --epochs of every trial: ASHA's rungs at 1, 3 and 9 epochs with eta 3
OPTUNA = "optuna-"  # Optuna's TPE and a pruner of its as shipped: optuna-median (its default), -sha, -hyperband, -none


def small_space() -> dict:
    """A fixed small CNN with the knobs that make trials hopeless or good: learning rate over
    2.6 decades, optimizer, width, dropout and L2."""
    from hyperopt import hp

    from hks.space import demo_point

    return {**demo_point(), "residual": None, "first_conv": None, "batch_size": 64, "use_BN": False,
            "fc_units_1_mult": 0.1,
            "lr_rate_mult": hp.loguniform("lr_rate_mult", np.log(0.05), np.log(20.0)),
            "optimizer": hp.choice("optimizer", ["Adam", "RMSprop", "Nadam"]),
            "conv_hiddn_units_mult": hp.loguniform("conv_hiddn_units_mult", np.log(0.25), np.log(0.8)),
            "conv_dropout_drop_proba": hp.uniform("conv_dropout_drop_proba", 0.0, 0.35),
            "l2_weight_reg_mult": hp.loguniform("l2_weight_reg_mult", -1.3, 1.3)}


@dataclass
class SearchRun:
    prune: str
    seed: int
    best: float = 0.0
    trial_epochs: int = 0
    pruned: int = 0
    wall: float = 0.0
    progress: list[tuple[float, float]] = field(default_factory=list)  # (seconds, best completed so far)
    curves: list[list[float]] = field(default_factory=list)  # each trial's val accuracy per epoch, in tid order

    def time_to_reach(self, target: float) -> float | None:
        return next((t for t, best in self.progress if best >= target), None)


def run_search(settings: Settings, space: dict) -> SearchRun:
    """One search through hks's own runner (``hks.Study``, in process, in-memory storage): the oracle
    asks the pruner after every epoch with the curves in the storage, as in any search."""
    import contextlib
    import io

    from hks.pruners import MONITOR
    from hks.study import Study

    name = settings.prune + ("+pause" if settings.prune_pause else "")
    run, started = SearchRun(name, settings.seed), time.time()
    with contextlib.redirect_stdout(io.StringIO()), Study(settings.replace(trials_file=":memory:"),
                                                          space=space) as study:
        results = study.optimize()
    run.wall = time.time() - started
    run.curves = [list((r.get("history") or {}).get(MONITOR, [])) for r in sorted(results, key=lambda r: r["tid"])]
    run.trial_epochs = sum(map(len, run.curves))
    for result in sorted(results, key=lambda r: r["finished_at"]):
        run.pruned += result["status"] == "pruned"
        if result["status"] == "ok":
            run.best = max(run.best, result["fine_best_accuracy"])
        run.progress.append((result["finished_at"] - started, run.best))
    return run


def optuna_pruner(name: str) -> Callable[[], Any]:
    """A maker of Optuna's pruner ``name`` as shipped, with its default settings (``none``: no pruning)."""
    import optuna

    return {"median": optuna.pruners.MedianPruner, "sha": optuna.pruners.SuccessiveHalvingPruner,
            "hyperband": optuna.pruners.HyperbandPruner, "none": optuna.pruners.NopPruner}[name]


def run_optuna_search(settings: Settings, space: dict, name: str) -> SearchRun:
    """What an Optuna user runs instead: Optuna's default sampler (TPE, seeded) and its pruner ``name``
    (after ``optuna-``) as shipped, asked define-by-run over the same space through ask and tell. Each
    trial is trained by the same :func:`hks.objective.run_trial` as hks's searches (same data, seeds,
    epochs and patience), reporting the validation accuracy after every epoch and asking
    ``should_prune``, as Optuna's Keras pruning callback does; only the search and pruning differ."""
    import contextlib
    import io
    import zlib

    import optuna
    from hyperopt import space_eval

    from hks.objective import run_trial, splits_for
    from hks.pruners import MONITOR
    from hks.samplers.optuna_space import ask_values, translate

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    params, splits = translate(space), splits_for(settings)
    # Optuna's Hyperband assigns brackets by a checksum of the study's name: named by the seed, a rerun is the same
    study = optuna.create_study(study_name=f"pruning-{zlib.crc32(f'{name}-{settings.seed}'.encode())}",
                                direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed),
                                pruner=optuna_pruner(name[len(OPTUNA):])())
    run, started = SearchRun(name, settings.seed), time.time()
    for tid in range(settings.max_evals):
        trial = study.ask()
        point = space_eval(space, ask_values(trial, params))

        def should_prune(epoch: int, logs: dict[str, float], trial: optuna.Trial = trial) -> bool:
            trial.report(logs[MONITOR], epoch)
            return trial.should_prune()

        with contextlib.redirect_stdout(io.StringIO()):
            result = run_trial(point, settings, splits=splits, tid=tid, should_prune=should_prune, verbose=False)
        run.curves.append(list((result.get("history") or {}).get(MONITOR, [])))
        if result["status"] == "ok":
            study.tell(trial, result["fine_best_accuracy"])
            run.best = max(run.best, result["fine_best_accuracy"])
        else:
            run.pruned += result["status"] == "pruned"
            study.tell(trial, state=optuna.trial.TrialState.PRUNED if result["status"] == "pruned"
                       else optuna.trial.TrialState.FAIL)
        run.progress.append((time.time() - started, run.best))
    run.wall = time.time() - started
    run.trial_epochs = sum(map(len, run.curves))
    return run


def pruner_settings(base: Settings, name: str, seed: int) -> Settings:
    """The settings of one search: ``name`` is a ``--prune`` value, ``+pause`` adding ``--prune-pause``
    (an Optuna arm runs with hks's pruning off: Optuna's pruner decides)."""
    prune, _, pause = name.partition("+")
    prune = "none" if name.startswith(OPTUNA) else prune
    return base.replace(prune=prune, prune_pause=pause == "pause", seed=seed, experiment_name=f"{name}_{seed}")


def search_small_space(job: tuple[str, Settings]) -> SearchRun:
    """One search over :func:`small_space`, hks's or an Optuna arm's, in a pool's process (hyperopt spaces
    do not pickle)."""
    name, settings = job
    if name.startswith(OPTUNA):
        return run_optuna_search(settings, small_space(), name)
    return run_search(settings, small_space())


def summary_rows(runs: list[SearchRun], names: Sequence[str]) -> list[str]:
    base = [r for r in runs if r.prune == "none"]
    target = statistics.mean(r.best for r in base) if base else None
    base_epochs = statistics.mean(r.trial_epochs for r in base) if base else None
    base_wall = statistics.mean(r.wall for r in base) if base else None
    rows = [f"{'pruner':<16} {'best val acc mean +- sd [min-max]':<34} {'trial-epochs':>12} {'x none':>7} "
            f"{'wall s':>7} {'x none':>7} {'pruned':>7}  reached unpruned mean best"]
    for name in names:
        mine = [r for r in runs if r.prune == name]
        bests = [r.best for r in mine]
        spread = statistics.stdev(bests) if len(bests) > 1 else 0.0
        epochs, wall = statistics.mean(r.trial_epochs for r in mine), statistics.mean(r.wall for r in mine)
        reached = [t for r in mine if target is not None and (t := r.time_to_reach(target)) is not None]
        when = f"{len(reached)}/{len(mine)} seeds" + (f", median {statistics.median(reached):.0f}s" if reached else "")
        rows.append(f"{name:<16} {statistics.mean(bests):.4f} +- {spread:.4f} [{min(bests):.4f}-{max(bests):.4f}]"
                    f"{'':<4} {epochs:>12.1f} {_ratio(epochs, base_epochs):>7} {wall:>7.0f} "
                    f"{_ratio(wall, base_wall):>7} {statistics.mean(r.pruned for r in mine):>7.1f}  {when}")
    return rows


def _ratio(value: float, base: float | None) -> str:
    return f"{value / base:.2f}" if base else "-"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="search seeds per pruner")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run are first-seed .. first-seed+seeds-1")
    parser.add_argument("--trials", type=int, default=30, help="trials per search (the same for every pruner)")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="--epochs of every trial")
    parser.add_argument("--patience", type=int, default=3, help="early-stopping patience, with and without pruning")
    parser.add_argument("--dataset-size", type=int, default=2000,
                        help="images drawn from the archive's training batches")
    parser.add_argument("--val-fraction", type=float, default=1 / 3,
                        help="of them held out for validation (1/3 of 2,000: 667 images, about +-1.9 points)")
    parser.add_argument("--pruners", default="none,asha,optuna-median",
                        help="comma-separated --prune values, asha+pause for --prune asha --prune-pause, "
                             "optuna-median (Optuna's TPE and default pruner as shipped), optuna-sha, "
                             "optuna-hyperband, optuna-none (median and hyperband double the run time)")
    parser.add_argument("--sampler-loss", default="ranked", choices=("ranked", "best"),
                        help="--prune-sampler-loss of the pruned searches")
    parser.add_argument("--reduction-factor", type=int, default=Settings.prune_reduction_factor,
                        help="--prune-reduction-factor (eta) of ASHA and Hyperband")
    parser.add_argument("--min-epochs", type=int, default=Settings.prune_min_epochs, help="--prune-min-epochs")
    parser.add_argument("--warmup-trials", default="auto", type=parse_count_or_auto,
                        help="--prune-warmup-trials (auto: the pruner's own)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads of each search")
    parser.add_argument("--jobs", type=int, default=2,
                        help="searches run at once, each in its own process (jobs x threads = the cores)")
    parser.add_argument("--json", default="", help="also write every search's figures to this file (after each)")
    parser.add_argument("--summarize", nargs="+", default=[], metavar="JSON",
                        help="only print the table of searches saved with --json (e.g. seeds run apart)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    names = [n.strip() for n in args.pruners.split(",") if n.strip()]
    if args.summarize:
        known = {f.name for f in fields(SearchRun)}  # files of other versions may carry more
        runs = [SearchRun(**{k: v for k, v in r.items() if k in known})
                for path in args.summarize for r in json.loads(Path(path).read_text())]
        print("\n".join(summary_rows(runs, [n for n in names if any(r.prune == n for r in runs)])))
        return 0
    from hks.objective import configure_tensorflow

    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(dataset="cifar10", data_dir=str(DATA_DIR), download=False, dataset_size=args.dataset_size,
                        val_fraction=args.val_fraction, epochs=args.epochs, patience=args.patience,
                        threads=args.threads,
                        algo="tpe", max_evals=args.trials, n_startup_trials=5, results_dir=tmp, plots=False,
                        prune_warmup_trials=args.warmup_trials, prune_reduction_factor=args.reduction_factor,
                        prune_min_epochs=args.min_epochs, prune_sampler_loss=args.sampler_loss)
        configure_tensorflow(base)
        runs: list[SearchRun] = []
        val = round(args.dataset_size * args.val_fraction)
        print(f"CIFAR-10 mini: {args.dataset_size - val} training and {val} validation images, "
              f"{args.trials} TPE trials x up to {args.epochs} epochs, patience {args.patience}, "
              f"{args.seeds} seeds, {args.jobs} searches at once x {args.threads} thread(s), "
              f"pruned loss for TPE: {args.sampler_loss}, eta {args.reduction_factor}, "
              f"min epochs {args.min_epochs}, warm-up {args.warmup_trials}", flush=True)
        searches = [(name, pruner_settings(base, name, seed))
                    for seed in range(args.first_seed, args.first_seed + args.seeds) for name in names]
        # one fresh process per search: each pays the same start-up (data, TensorFlow's first tracing)
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn"),
                                 max_tasks_per_child=1) as pool:
            for run in pool.map(search_small_space, searches):
                runs.append(run)
                print(f"  seed {run.seed} {run.prune:<16} best {run.best:.4f}  trial-epochs {run.trial_epochs:>4}  "
                      f"pruned {run.pruned:>2}  {run.wall:.0f}s", flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=1))
    print("\n".join(summary_rows(runs, names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
