#!/usr/bin/env python3
"""Classic space against modern space at the same search budget in trial-epochs, several seeds.

For each seed, the same sampler (hyperopt's random search, ``--algo rand``: with a handful of
trials TPE would still be in its random start-up phase anyway) draws ``--trials`` points of each
space, each trained exactly ``--epochs`` epochs (patience = epochs, so every trial spends its
whole budget) on the CIFAR-10 mini archive; the figure is the best validation accuracy of each
search. Prints a table per seed, the medians and the difference modern - classic (goal: >= 5 points).

    python bench/space_quality.py [--seeds 1,2,3] [--trials 4] [--epochs 3] [--dataset-size 1500]
                                  [--val-fraction 0.333]

The defaults (4 trials x 3 epochs = 12 trial-epochs per search; 1,000 training and 500 validation
images, so one accuracy carries about +-2 points of noise) keep it near 20 minutes on two quiet
CPU cores. What it does not show: which space wins at a real budget (hundreds of trial-epochs on
50,000 images, where deeper networks and longer schedules pay off), wall-clock cost (a modern
trial-epoch costs several classic ones on a CPU; see the seconds column), and CIFAR-100.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import multiprocessing.queues

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fresh_process import run_fresh  # noqa: E402  (bench/, beside this script)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar-10-mini"
SPACES = ("classic", "modern")


def _search(space: str, seed: int, args: argparse.Namespace, queue: multiprocessing.queues.Queue) -> None:
    """One search in a fresh process (no state shared between searches); puts (best, seconds, failed)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from hks.config import Settings
    from hks.study import run_search

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(dataset="cifar10", data_dir=str(args.data_dir), download=False,
                            dataset_size=args.dataset_size, val_fraction=args.val_fraction,
                            epochs=args.epochs, patience=args.epochs,
                            threads=args.threads, algo="rand", max_evals=args.trials, seed=seed, space=space,
                            results_dir=tmp, trials_file=f"{tmp}/results.pkl", plots=False)
        started = time.perf_counter()
        results = run_search(settings)
        seconds = time.perf_counter() - started
    accuracies = [r["fine_best_accuracy"] for r in results if r.get("status") == "ok"]
    queue.put(((max(accuracies) if accuracies else 0.0), seconds, len(results) - len(accuracies)))


def best_accuracy(space: str, seed: int, args: argparse.Namespace) -> tuple[float, float, int]:
    """(best validation accuracy, seconds, failed trials) of one search, run in a fresh process."""
    return run_fresh(_search, space, seed, args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--trials", type=int, default=4, help="trials per search")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (every trial runs all of them)")
    parser.add_argument("--dataset-size", type=int, default=1500, help="images drawn before the split")
    parser.add_argument("--val-fraction", type=float, default=1 / 3, help="of them held out for validation")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if len(seeds) < 3:
        parser.error("use at least 3 seeds (--seeds 1,2,3): one search says little")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    rows = []
    for seed in seeds:
        for space in SPACES:
            accuracy, seconds, failed = best_accuracy(space, seed, args)
            rows.append((seed, space, accuracy, seconds, failed))
            print(f"seed {seed} {space:>7}: best val accuracy {accuracy:.4f} ({seconds:.0f}s, {failed} failed)",
                  flush=True)
    budget = args.trials * args.epochs
    print(f"\nbudget per search: {args.trials} trials x {args.epochs} epochs = {budget} trial-epochs, "
          f"{args.dataset_size} images ({round(args.dataset_size * args.val_fraction)} for validation), "
          "random sampler")
    print("| seed | classic best val acc | modern best val acc | modern - classic (points) "
          "| seconds classic / modern |")
    print("|---|---|---|---|---|")
    by = {(seed, space): (acc, sec) for seed, space, acc, sec, _ in rows}
    for seed in seeds:
        (c, cs), (m, ms) = by[(seed, "classic")], by[(seed, "modern")]
        print(f"| {seed} | {c:.4f} | {m:.4f} | {100 * (m - c):+.1f} | {cs:.0f} / {ms:.0f} |")
    median = {space: statistics.median(by[(s, space)][0] for s in seeds) for space in SPACES}
    print(f"| median | {median['classic']:.4f} | {median['modern']:.4f} | "
          f"{100 * (median['modern'] - median['classic']):+.1f} | |")
    print("goal: modern better by >= 5 points at equal trial-epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
