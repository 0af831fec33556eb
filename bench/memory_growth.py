#!/usr/bin/env python3
"""Does a long in-process search keep its memory flat? A 20-trial search, RSS after every trial.

Runs ``hks search`` in this process's way (``hks.study.run_search``: the default sampler over the classic space,
CIFAR-10 mini archive, plots on as by default) in a fresh process per arm, and prints after each
trial the search process's resident memory and the trial's own peak (``peak_rss_mb`` of its
result). The hks arms see the same trials (same seed). Arms:

* ``plain``, the baseline: a plain Keras loop over random points of the same space, as a user without hks
  writes it (``fit``, then ``clear_session`` and ``gc.collect``); the summary gives each arm's growth
  against it;
* ``hks``: as shipped: each trial trains in its own process (``--trial-process fresh``, the default
  for hks's Keras trials), so what is measured after a trial is what the search keeps;
* ``same-process``: trials in the search process (``--trial-process same``; ``--cpu-allocator auto``
  then means the system allocator) and the end-of-trial ``release_memory`` (garbage collection +
  malloc_trim);
* ``pool``: trials in the search process with TensorFlow's own CPU allocator, as a plain Keras loop
  over trials has it (it is hks's search loop, not a user's script: the allocator is what differs).

Goal: after the first 3 trials, growth under 50 MB per trial on average.

    python bench/memory_growth.py [--trials 20] [--epochs 1] [--dataset-size 1000] [--arms plain,hks,same-process,pool]

Not shown: growth that needs more than 20 trials to appear, GPU memory (the device allocator keeps
its pool by design), and a full-size dataset (1,000 images of the mini archive keep each trial short
on a CPU; data copies that leak would grow with the dataset).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import multiprocessing.queues

    from hks.store.protocol import Job

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fresh_process import run_fresh  # noqa: E402  (bench/, beside this script)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar-10-mini"
SKIP = 3
PLAIN = "plain"  # the baseline arm: a plain Keras loop, no hks search


def _arm(name: str, args: argparse.Namespace, queue: multiprocessing.queues.Queue) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from hks import study
    from hks.config import Settings
    from hks.memory import rss_mb
    from hks.worker import Worker

    rows: list[tuple[float, float]] = []
    complete = Worker.complete

    def measured(worker: Worker, job: Job, result: dict[str, Any]) -> bool:
        accepted = complete(worker, job, result)
        rows.append((rss_mb(), result.get("peak_rss_mb", float("nan"))))
        print(f"  {name:>12} trial {len(rows):2d}: RSS after {rows[-1][0]:7.1f} MiB, trial peak "
              f"{rows[-1][1]:7.1f} MiB ({result['status']})", flush=True)
        return accepted

    Worker.complete = measured  # the search process records each result here, wherever it trained
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(dataset="cifar10", data_dir=str(args.data_dir), download=False, epochs=args.epochs,
                            dataset_size=args.dataset_size,
                            patience=args.epochs, threads=args.threads, max_evals=args.trials,
                            seed=args.seed, results_dir=tmp, trials_file=f"{tmp}/results.pkl",
                            trial_process="fresh" if name == "hks" else "same",
                            cpu_allocator="pool" if name == "pool" else "auto")
        study.run_search(settings)
    queue.put(json.dumps(rows))


def _plain_arm(args: argparse.Namespace, queue: multiprocessing.queues.Queue) -> None:
    """The baseline: a plain Keras loop over trials, as the classic sample's users write one: build the model of
    a random point of the classic space (with hks's builder, the sample's model code), ``fit`` on the arrays,
    then ``clear_session`` and ``gc.collect``. No search, no storage, no sampler of hks."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import gc

    import keras
    import numpy as np
    import tensorflow as tf
    from hyperopt.pyll.stochastic import sample
    from train_throughput import load_cifar10  # the plain script's own loader (bench/, beside this script)

    from hks.memory import rss_mb
    from hks.model import build_model
    from hks.space import load_space

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    (x, y), _ = load_cifar10(args.data_dir)
    x, y = x[:args.dataset_size], y[:args.dataset_size]
    space, rng, rows = load_space("hks.space", "cifar10"), np.random.default_rng(args.seed), []
    for trial in range(args.trials):
        point = sample(space, rng=rng)
        model = build_model(point, num_fine=10, num_coarse=None)
        model.fit(x, {"fine": y}, batch_size=int(point["batch_size"]), epochs=args.epochs, verbose=0)
        del model
        keras.backend.clear_session()
        gc.collect()
        rows.append((rss_mb(), float("nan")))
        print(f"  {'plain':>12} trial {trial + 1:2d}: RSS after {rows[-1][0]:7.1f} MiB", flush=True)
    queue.put(json.dumps(rows))


def _growth(rows: list[list[float]]) -> float:
    after = [r[0] for r in rows]
    return (after[-1] - after[SKIP - 1]) / max(1, len(after) - SKIP)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--dataset-size", type=int, default=1000, help="training images before the split")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--arms", default=f"{PLAIN},hks,same-process,pool")
    args = parser.parse_args()
    if args.trials <= SKIP + 1:
        parser.error(f"--trials must be more than {SKIP + 1}")
    summary = {name: json.loads(run_fresh(_plain_arm, args) if name == PLAIN else run_fresh(_arm, name, args))
               for name in args.arms.split(",")}
    print(f"\n| arm | RSS after trial {SKIP} (MiB) | after trial {args.trials} | growth / trial after the first "
          f"{SKIP} (MB) | highest trial peak (MiB) |")
    print("|---|---|---|---|---|")
    for name, rows in summary.items():
        print(f"| {name} | {rows[SKIP - 1][0]:.0f} | {rows[-1][0]:.0f} | {_growth(rows) * 1.048576:.1f} | "
              f"{max(r[1] for r in rows):.0f} |")
    if PLAIN in summary and len(summary) > 1:
        plain = max(_growth(summary[PLAIN]), 1e-9)
        print("growth / trial against the plain Keras loop's: "
              + ", ".join(f"{name} {_growth(rows) / plain:.2f}x" for name, rows in summary.items() if name != PLAIN))
    print("goal: growth < 50 MB per trial")
    return 0


if __name__ == "__main__":
    sys.exit(main())
