"""Does autoHyper's learning rate train better than the default base rate? Both measured here.

Runs ``hks autolr`` on the CIFAR-10 mini archive, then trains the demo architecture from the same
initial weights with the chosen rate and with the default base rate (hks.space.BASE_LEARNING_RATE)
for the same epochs, and prints both validation accuracies and their ratio.

    python bench/autolr_quality.py [--data-dir ../shared/data/cifar-10-mini] [--dataset-size 2000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

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
    parser.add_argument("--epochs-per-trial", type=int, default=2)
    parser.add_argument("--num-lrs", type=int, default=8)
    parser.add_argument("--max-trials", type=int, default=8)
    parser.add_argument("--train-epochs", type=int, default=4, help="epochs of the final comparison trainings")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(dataset="cifar10", data_dir=args.data_dir, download=False,
                            dataset_size=args.dataset_size, threads=args.threads, results_dir=tmp,
                            autolr_epochs=args.epochs_per_trial, autolr_num_lrs=args.num_lrs,
                            autolr_max_trials=args.max_trials)
        started = time.perf_counter()
        scan = run_autolr(settings, verbose=False)
        scan_seconds = time.perf_counter() - started
        final = trial_setup(settings.replace(autolr_epochs=args.train_epochs), verbose=False)
        chosen = _best_val_accuracy(run_lr_trial(scan.chosen_lr, final))
        baseline = _best_val_accuracy(run_lr_trial(BASE_LEARNING_RATE, final))
    print(f"\nautoHyper scan: {scan.trials} trials, {scan_seconds:.0f}s, chose lr {scan.chosen_lr:.4g} "
          f"({scan.stop_reason})")
    print(f"best val accuracy after {args.train_epochs} epochs: autoHyper lr {chosen:.4f}, "
          f"default lr {BASE_LEARNING_RATE:g} {baseline:.4f}")
    print(f"ratio autoHyper / default: {chosen / baseline:.3f}" if baseline > 0 else "ratio: n/a (baseline 0)")


if __name__ == "__main__":
    main()
