#!/usr/bin/env python3
"""Training throughput of one hks trial against a plain Keras script, in one invocation.

Both train the same model (a fixed mid-size point of the space, ``hks.space.demo_point``) on the
same ``tf.data`` input (CIFAR-10 mini archive, validation every epoch, as a search needs). Each
run happens in a fresh process, alternating plain / hks, so neither inherits the other's warm
caches; the first epoch (graph tracing) is excluded. Prints images per second of each, the ratio
hks / plain (goal: >= 0.95) and each process's peak resident memory.

    python bench/train_throughput.py [--epochs 4] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar-10-mini"


def _settings(args, results_dir: str):
    from hks.config import Settings

    return Settings(dataset="cifar10", data_dir=str(args.data_dir), download=False, epochs=args.epochs,
                    patience=args.epochs, threads=args.threads, results_dir=results_dir, plots=False)


def _epoch_seconds(stamps: list[float]) -> float:
    """Median epoch time, leaving out the first epoch (tracing and compilation)."""
    return statistics.median(b - a for a, b in zip(stamps, stamps[1:]))


def _run_plain(args, queue) -> None:
    """The baseline: what a user would write by hand with Keras, nothing of hks but the model."""
    import keras

    from hks.config import Settings
    from hks.data import load_splits, make_dataset
    from hks.model import build_model
    from hks.objective import configure_threads
    from hks.space import demo_point

    configure_threads(args.threads)
    defaults = Settings()
    splits = load_splits("cifar10", args.data_dir, download=False, val_fraction=defaults.val_fraction,
                         seed=defaults.seed)
    point = demo_point()
    model = build_model(point, 10, None)
    stamps: list[float] = []
    stamp = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: stamps.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: stamps.append(time.perf_counter()))
    train = make_dataset(splits.train, point["batch_size"], training=True, seed=0)
    val = make_dataset(splits.val, point["batch_size"], training=False)
    model.fit(train, validation_data=val, epochs=args.epochs, verbose=0, callbacks=[stamp], shuffle=False)
    queue.put(("plain", len(splits.train) / _epoch_seconds(stamps[1:]), _peak_mib()))


def _run_hks(args, queue) -> None:
    """hks's objective: the same model and input, with its callbacks, JSON result and bookkeeping."""
    import tempfile

    from hks.objective import run_trial
    from hks.space import demo_point

    with tempfile.TemporaryDirectory() as results_dir:
        settings = _settings(args, results_dir)
        stamps: list[float] = []
        result = run_trial(demo_point(), settings, on_epoch=lambda epoch, logs: stamps.append(time.perf_counter()),
                           verbose=False)
    if result["status"] != "ok":
        raise SystemExit(f"the hks trial failed: {result['error']}")
    from hks.objective import splits_for

    n_train = len(splits_for(settings).train)
    queue.put(("hks", n_train / _epoch_seconds(stamps), _peak_mib()))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(target, args) -> tuple[str, float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(args, queue))
    process.start()
    outcome = queue.get()
    process.join()
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is not timed")
    parser.add_argument("--repeats", type=int, default=2, help="alternating plain/hks pairs")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads in each run")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be at least 3 (the first epoch is not timed)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    rates: dict[str, list[float]] = {"plain": [], "hks": []}
    peaks: dict[str, float] = {"plain": 0.0, "hks": 0.0}
    for repeat in range(args.repeats):
        for target in (_run_plain, _run_hks):
            name, rate, peak = _measure(target, args)
            rates[name].append(rate)
            peaks[name] = max(peaks[name], peak)
            print(f"  run {repeat + 1} {name:>5}: {rate:8.1f} images/s  peak RSS {peak:7.0f} MiB", flush=True)

    plain, ours = statistics.median(rates["plain"]), statistics.median(rates["hks"])
    print(f"\nplain Keras : {plain:8.1f} images/s (median of {args.repeats}), peak RSS {peaks['plain']:.0f} MiB")
    print(f"hks trial   : {ours:8.1f} images/s (median of {args.repeats}), peak RSS {peaks['hks']:.0f} MiB")
    print(f"ratio hks / plain: {ours / plain:.3f}  (goal >= 0.95)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
