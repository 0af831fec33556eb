"""Does autoHyper's learning rate train better than the default, or than a grid of fixed rates?

For each seed (the split, the initial weights and the batches follow it): ``hks autolr`` scans
the CIFAR-10 mini archive, then the demo architecture is trained ``--train-epochs`` epochs from
the same initial weights with the chosen rate, with the default base rate
(hks.space.BASE_LEARNING_RATE) and with every rate of ``--grid``. Prints per seed the best
validation accuracy of each, the best rate of the grid, the medians over seeds and the ratios
autoHyper / default and autoHyper / best fixed rate.

    python bench/autolr_quality.py [--seeds 1,2,3] [--train-epochs 12] [--grid 1e-4,3e-4,1e-3,3e-3,1e-2]

What it does not show: the best grid rate is picked on the same validation split it is scored
on (an optimistic baseline that costs one training per grid point), the scan's own cost is not
charged to autoHyper's accuracy (its seconds are printed), and one architecture and optimizer
(Adam) on a small dataset say little about a search over many.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's hks, not an installed one

from hks.autolr.calibrate import run_autolr, trial_setup  # noqa: E402
from hks.autolr.trial import run_lr_trial  # noqa: E402
from hks.config import Settings  # noqa: E402
from hks.space import BASE_LEARNING_RATE  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-mini"


def _best_val_accuracy(record: dict) -> float:
    values = [e.get("val_fine_accuracy", e.get("val_accuracy", 0.0)) for e in record["epochs"]]
    return max(values) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA))
    parser.add_argument("--dataset-size", type=int, default=2000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs-per-trial", type=int, default=2)
    parser.add_argument("--num-lrs", type=int, default=8)
    parser.add_argument("--max-trials", type=int, default=8)
    parser.add_argument("--train-epochs", type=int, default=12, help="epochs of the final comparison trainings")
    parser.add_argument("--grid", default="1e-4,3e-4,1e-3,3e-3,1e-2", help="fixed learning rates compared")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    grid = sorted({float(lr) for lr in args.grid.split(",")} | {BASE_LEARNING_RATE})

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    rows = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(dataset="cifar10", data_dir=args.data_dir, download=False, seed=seed,
                                dataset_size=args.dataset_size, threads=args.threads, results_dir=tmp,
                                autolr_epochs=args.epochs_per_trial, autolr_num_lrs=args.num_lrs,
                                autolr_max_trials=args.max_trials)
            started = time.perf_counter()
            scan = run_autolr(settings, verbose=False)
            scan_seconds = time.perf_counter() - started
            final = trial_setup(settings.replace(autolr_epochs=args.train_epochs), verbose=False)
            chosen = _best_val_accuracy(run_lr_trial(scan.chosen_lr, final))
            fixed = {lr: _best_val_accuracy(run_lr_trial(lr, final)) for lr in grid}
        best_lr = max(fixed, key=fixed.get)
        rows.append((seed, scan.chosen_lr, chosen, fixed[BASE_LEARNING_RATE], best_lr, fixed[best_lr]))
        print(f"seed {seed}: autoHyper lr {scan.chosen_lr:.4g} ({scan.trials} trials, {scan_seconds:.0f}s) "
              f"acc {chosen:.4f}; fixed " + ", ".join(f"{lr:g}: {acc:.4f}" for lr, acc in fixed.items()), flush=True)
    print(f"\nbest val accuracy after {args.train_epochs} epochs (CIFAR-10 mini, {args.dataset_size} images, Adam)")
    print("| seed | autoHyper lr | autoHyper acc | default 0.001 acc | best fixed lr | its acc |")
    print("|---|---|---|---|---|---|")
    for seed, lr, acc, default, best_lr, best in rows:
        print(f"| {seed} | {lr:.4g} | {acc:.4f} | {default:.4f} | {best_lr:g} | {best:.4f} |")
    med = [statistics.median(r[i] for r in rows) for i in (2, 3, 5)]
    print(f"| median | | {med[0]:.4f} | {med[1]:.4f} | | {med[2]:.4f} |")
    if med[1] > 0 and med[2] > 0:
        print(f"ratio autoHyper / default: {med[0] / med[1]:.3f}; autoHyper / best fixed rate: {med[0] / med[2]:.3f}")


if __name__ == "__main__":
    main()
