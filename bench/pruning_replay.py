#!/usr/bin/env python3
"""Replay pruners on learning curves already measured: what would each rule have stopped?

Reads the unpruned searches saved by ``bench/pruning.py --json`` (every trial's validation
accuracy per epoch), draws ``--trials`` of those curves in random order many times, and runs each
pruner over them as a sequential search would (the same :mod:`hks.pruners` code, the same
early-stopping patience, nothing trained). Prints, per pruner, how many points of best accuracy it
loses against keeping every trial and its share of the trial-epochs.

    python bench/pruning_replay.py RUN.json [RUN.json ...] [--trials 15] [--trend 0.05]
                                   [--pruners asha:3:1,asha:4:1,asha:3:2,median,hyperband,optuna-median,...]

The baseline is what an Optuna user gets: ``optuna-median``, ``optuna-sha`` and ``optuna-hyperband`` are
Optuna's ``MedianPruner``, ``SuccessiveHalvingPruner`` and ``HyperbandPruner`` as shipped (default settings),
asked through Optuna's own study on the same draws.

A pruner is ``name[:eta[:min_epochs]]``; ``pause[:eta[:min_epochs]]`` is ASHA as its paper runs
it, and as ``--prune asha --prune-pause`` does: a trial waits at its rung and is resumed once it
ranks in the rung's top ``floor(n / eta)``; when nothing else is left, a thin top rung keeps its
best. ``--trend S`` sorts each draw by final accuracy plus Gaussian noise of sd S, so later trials
are better on average, as under a sampler that learns.

What it does not show: the sampler's reaction to pruning (in a real search TPE sees the pruned
trials and proposes different points), and noise beyond the curves at hand. It isolates the
pruning rule: a rule that loses accuracy here loses it for any sampler.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pruning import EPOCHS, OPTUNA, optuna_pruner  # noqa: E402
from hks.config import Settings  # noqa: E402
from hks.pruners import FINISHED, PRUNED, Curve, Pruner, make_pruner  # noqa: E402

PAUSE = "pause"  # ASHA with pauses and promotions (--prune-pause)


def patience_cut(values: Sequence[float], patience: int) -> list[float]:
    """The curve as early stopping leaves it: up to ``patience`` epochs without a new best."""
    best, since = float("-inf"), 0
    for epoch, value in enumerate(values, 1):
        best, since = (value, 0) if value > best else (best, since + 1)
        if since >= patience:
            return list(values[:epoch])
    return list(values)


def replay(pruner: Pruner, curves: Sequence[Sequence[float]], patience: int) -> tuple[float, int]:
    """(best accuracy of a trial that was not pruned, trial-epochs) of one sequential search."""
    others: list[Curve] = []
    best, epochs = 0.0, 0
    for tid, curve in enumerate(curves):
        values: list[float] = []
        pruned = False
        for value in patience_cut(curve, patience):
            values.append(value)
            if pruner.decide(tid, values, others):
                pruned = True
                break
        epochs += len(values)
        others.append(Curve(tid, PRUNED if pruned else FINISHED, tuple(values)))
        best = best if pruned else max(best, *values)
    return best, epochs


def replay_paused(curves: Sequence[Sequence[float]], patience: int, eta: int, rungs: Sequence[int],
                  epochs: int) -> tuple[float, int]:
    """(best accuracy of a trial that ran to its end, trial-epochs) of one sequential search under
    ASHA with pauses: a trial reaching a rung waits there. Each time the worker is free it resumes
    the first trial, highest rung first, that ranks in its rung's top ``floor(n / eta)`` and was not
    resumed yet; with none, it starts the next trial. A trial ends at ``epochs`` or its patience (one
    that ends on a rung still counts among the rung's ``n``)."""
    cut = [patience_cut(curve, patience) for curve in curves]
    trained = [0] * len(cut)
    paused: dict[int, list[int]] = {rung: [] for rung in rungs}
    resumed: set[tuple[int, int]] = set()
    ended: list[int] = []
    started = 0
    while True:
        job = _next_promotion(cut, paused, resumed, eta)
        if job is None and started == len(cut):
            job = _next_promotion(cut, paused, resumed, eta, final=True)
            if job is None:
                break
        if job is None:
            tid, rung, started = started, 0, started + 1
        else:
            tid, rung = job
            resumed.add(job)
        target = next((r for r in rungs if r > rung), epochs)
        trained[tid] = min(target, len(cut[tid]))
        if trained[tid] == len(cut[tid]):  # its end (epochs or patience): counted at a rung it ended on
            ended.append(tid)
            resumed.add((tid, target))
        if trained[tid] == target and target in paused:
            paused[target].append(tid)
    return max((max(cut[tid]) for tid in ended), default=0.0), sum(trained)


def _next_promotion(cut: list[list[float]], paused: dict[int, list[int]], resumed: set[tuple[int, int]],
                    eta: int, final: bool = False) -> tuple[int, int] | None:
    """(tid, rung) of the trial to resume, highest rung first; ties go to the earlier trial. ``final``:
    a rung keeps its best even with fewer than ``eta`` trials."""
    for rung in sorted(paused, reverse=True):
        waiting = paused[rung]
        keep = max(1, len(waiting) // eta) if final else len(waiting) // eta
        top = sorted(waiting, key=lambda tid: -max(cut[tid][:rung]))[:keep]
        chosen = next((tid for tid in top if (tid, rung) not in resumed), None)
        if chosen is not None:
            return chosen, rung
    return None


def replay_optuna(make: Callable[[], Any], curves: Sequence[Sequence[float]], patience: int) -> tuple[float, int]:
    """:func:`replay` with an Optuna pruner as shipped, through Optuna's ask-and-tell: each epoch's accuracy
    is reported, and ``should_prune`` asked, as an Optuna user's training loop does."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna's Hyperband assigns brackets by a checksum of the study's name: named by the draw, the replay is
    # the same on every run, and each draw still gets its own assignment, as each user's study does.
    name = f"replay-{zlib.crc32(repr(list(map(list, curves))).encode())}"
    study = optuna.create_study(study_name=name, direction="maximize", pruner=make())
    best, epochs = 0.0, 0
    for curve in curves:
        trial, values, pruned = study.ask(), [], False
        for step, value in enumerate(patience_cut(curve, patience)):
            values.append(value)
            trial.report(value, step)
            if trial.should_prune():
                pruned = True
                break
        epochs += len(values)
        if pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, max(values))
            best = max(best, *values)
    return best, epochs


def replayer(spec: str, epochs: int) -> Callable[[Sequence[Sequence[float]], int], tuple[float, int]]:
    """``replay(curves, patience)`` for a pruner spec (see the module's doc), ``pause`` and Optuna's included."""
    name, _, knobs = spec.partition(":")
    if name.startswith(OPTUNA):
        make = optuna_pruner(name[len(OPTUNA):])
        return lambda curves, patience: replay_optuna(make, curves, patience)
    if name == PAUSE:  # ASHA's rungs and eta, read as asha's spec would be
        asha = pruner_of(f"asha:{knobs}" if knobs else "asha", epochs)
        return lambda curves, patience: replay_paused(curves, patience, asha.eta, asha.rungs, epochs)
    pruner = pruner_of(spec, epochs)
    return lambda curves, patience: replay(pruner, curves, patience)


def pruner_of(spec: str, epochs: int) -> Pruner:
    name, *knobs = spec.split(":")
    settings = Settings(epochs=epochs, prune=name)
    if knobs:
        settings = settings.replace(prune_reduction_factor=int(knobs[0]))
    if len(knobs) > 1:
        settings = settings.replace(prune_min_epochs=int(knobs[1]))
    return make_pruner(settings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="--json files of bench/pruning.py")
    parser.add_argument("--trials", type=int, default=15, help="trials per replayed search")
    parser.add_argument("--epochs", type=int, default=EPOCHS,
                        help="--epochs of the measured trials (pruning.py's default)")
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--draws", type=int, default=400, help="replayed searches per pruner")
    parser.add_argument("--trend", type=float, default=0.0, help="noise sd of the 'later trials are better' order")
    parser.add_argument("--pruners", default="asha:3:1,asha:4:1,asha:3:2,median,hyperband,"
                        "optuna-median,optuna-sha,optuna-hyperband")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pool = [curve for path in args.runs for run in json.loads(path.read_text()) if run["prune"] == "none"
            for curve in run.get("curves", []) if curve]
    if len(pool) < args.trials:
        parser.error(f"{len(pool)} unpruned curves in {', '.join(map(str, args.runs))}; need at least --trials "
                     f"{args.trials} (save them with: python bench/pruning.py --pruners none --json FILE)")
    rng = random.Random(args.seed)
    draws = [rng.sample(pool, args.trials) for _ in range(args.draws)]
    if args.trend:
        draws = [sorted(draw, key=lambda c: max(c) + rng.gauss(0, args.trend)) for draw in draws]
    unpruned = [replay(pruner_of("none", args.epochs), draw, args.patience) for draw in draws]
    base_epochs = statistics.mean(e for _, e in unpruned)
    print(f"{len(pool)} measured curves, {args.draws} draws of {args.trials} trials, patience {args.patience}, "
          f"trend {args.trend}; best without pruning {statistics.mean(b for b, _ in unpruned):.4f} on average")
    specs = args.pruners.split(",")
    width = max(14, *map(len, specs))
    print(f"{'pruner':<{width}} {'points lost (mean)':>18} {'draws losing > 1 point':>23} {'trial-epochs x none':>20}")
    for spec in specs:
        run = replayer(spec, args.epochs)
        results = [run(draw, args.patience) for draw in draws]
        lost = [100 * (b0 - b) for (b, _), (b0, _) in zip(results, unpruned)]
        print(f"{spec:<{width}} {statistics.mean(lost):>18.2f} {sum(x > 1 for x in lost) / len(lost):>23.2f} "
              f"{statistics.mean(e for _, e in results) / base_epochs:>20.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
