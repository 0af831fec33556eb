#!/usr/bin/env python3
"""Training throughput of one hks trial against a plain Keras script, in one invocation.

The baseline is what a user would write by hand: its own archive loader, its own numpy-to-tf.data
input (shuffle, batch, random flips, prefetch) and its own Keras code for the same architecture
(the demo point, ``hks.space.demo_point``), importing nothing from hks. Both use the same batch
size, threads, precision and XLA setting, on the CIFAR-10 mini archive with validation every
epoch. Runs alternate plain / hks in fresh processes; the first epoch (tracing) is not timed.
Prints images per second of each, the ratio hks / plain (goal: >= 0.95), images per CPU-second
(which other load on the machine hardly changes), peak resident memory and both parameter counts
(equal when the architectures are the same).

    python bench/train_throughput.py [--epochs 4] [--repeats 2] [--threads 2] [--precision mixed] [--jit on]

Not shown: GPU figures (run it on a GPU machine), full-size CIFAR, other points of the space.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import multiprocessing.queues

    import keras
    import numpy as np
    import tensorflow as tf

    from hks.config import Settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from fresh_process import run_fresh  # noqa: E402  (bench/, beside this script)

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar-10-mini"
BATCH = 128  # the demo point's batch size


def _settings(args: argparse.Namespace, results_dir: str) -> Settings:
    from hks.config import Settings

    return Settings(dataset="cifar10", data_dir=str(args.data_dir), download=False, epochs=args.epochs,
                    patience=args.epochs, threads=args.threads, results_dir=results_dir, plots=False,
                    precision=args.precision, jit=args.jit)


def _stamp() -> tuple[float, float]:
    """(wall clock, this process's CPU time) at an epoch's end."""
    return time.perf_counter(), time.process_time()


def _epoch_seconds(stamps: list[tuple[float, float]], clock: int = 0) -> float:
    """Median epoch time on the wall clock (0) or in CPU seconds (1), leaving out the first epoch
    (tracing and compilation). CPU time hardly changes with other load on the machine."""
    return statistics.median(b[clock] - a[clock] for a, b in zip(stamps, stamps[1:]))


def _rates(n_images: int, stamps: list[tuple[float, float]]) -> tuple[float, float]:
    """Images per wall second and per CPU second."""
    return n_images / _epoch_seconds(stamps, 0), n_images / _epoch_seconds(stamps, 1)


def load_cifar10(data_dir: Path) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The plain script's own loader: the official archive's pickled batches, as a user writes it."""
    import pickle
    import tarfile

    import numpy as np

    xs, ys = [], []
    with tarfile.open(data_dir / "cifar-10-python.tar.gz", "r:gz") as tar:
        for i in range(1, 6):
            batch = pickle.load(tar.extractfile(f"cifar-10-batches-py/data_batch_{i}"), encoding="bytes")
            xs.append(np.asarray(batch[b"data"], dtype=np.uint8))
            ys.append(np.asarray(batch[b"labels"], dtype=np.int32))
    x = np.concatenate(xs).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    y = np.concatenate(ys)
    order = np.random.default_rng(42).permutation(len(x))
    n_val = len(x) // 10
    return (x[order[n_val:]], y[order[n_val:]]), (x[order[:n_val]], y[order[:n_val]])


def plain_model() -> keras.Model:
    """The demo point's architecture written out by hand (hks.space.demo_point, CIFAR-10's one head)."""
    import keras
    from keras import layers, regularizers

    l2 = regularizers.l2(0.0007)

    def conv(x: keras.KerasTensor, filters: int, kernel: int = 3, activation: str = "relu") -> keras.KerasTensor:
        return layers.Conv2D(filters, kernel, padding="same", activation=activation, kernel_regularizer=l2)(x)

    inputs = keras.Input((32, 32, 3))
    x = conv(layers.Rescaling(1 / 255)(inputs), 16)
    for index, filters in enumerate((40, 80)):
        x = layers.BatchNormalization(momentum=0.9)(conv(x, filters))
        if index >= 1:  # one residual unit from the second block on
            branch = conv(layers.Dropout(0.1)(x), filters)
            x = layers.BatchNormalization(momentum=0.9)(layers.Add()([conv(x, filters, 1, "linear"), branch]))
        x = layers.Dropout(0.1)(layers.MaxPooling2D(2, padding="same")(x))
    x = layers.Dense(500, activation="relu", kernel_regularizer=l2)(layers.Flatten()(x))
    x = layers.Dropout(0.3)(layers.BatchNormalization(momentum=0.9)(x))
    outputs = layers.Dense(10, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.001), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def plain_datasets(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray
                   ) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The plain script's input: shuffled batches with random flips, prefetched; validation batches."""
    import tensorflow as tf

    train = (tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train)).batch(BATCH)
             .map(lambda x, y: (tf.image.random_flip_left_right(x), y), num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(tf.data.AUTOTUNE))
    return train, tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(BATCH).prefetch(tf.data.AUTOTUNE)


def _run_plain(args: argparse.Namespace, queue: multiprocessing.queues.Queue) -> None:
    """The baseline: a plain Keras script as a user would write it; nothing of hks is imported."""
    import keras
    import tensorflow as tf

    if args.threads > 0:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(args.threads, 2)))
    if args.precision == "mixed":
        gpus = tf.config.list_physical_devices("GPU")
        major = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))[0] if gpus else 0
        keras.config.set_dtype_policy("mixed_float16" if 7 <= major < 8 else "mixed_bfloat16")
    (x_train, y_train), (x_val, y_val) = load_cifar10(args.data_dir)
    model = plain_model()
    if args.jit != "auto":
        model.jit_compile = args.jit == "on"
    train, val = plain_datasets(x_train, y_train, x_val, y_val)
    stamps: list[tuple[float, float]] = []
    stamp = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: stamps.append(_stamp()))
    model.fit(train, validation_data=val, epochs=args.epochs, verbose=0, callbacks=[stamp])
    queue.put(("plain", _rates(len(x_train), stamps), _peak_mib(), model.count_params()))


def _run_hks(args: argparse.Namespace, queue: multiprocessing.queues.Queue) -> None:
    """hks's objective: the same model and input, with its callbacks, JSON result and bookkeeping."""
    import tempfile

    from hks.objective import run_trial
    from hks.space import demo_point
    from hks.trial_process import child_settings

    with tempfile.TemporaryDirectory() as results_dir:
        settings = child_settings(_settings(args, results_dir))  # as in a search's trial process
        stamps: list[tuple[float, float]] = []
        result = run_trial(demo_point(), settings, on_epoch=lambda epoch, logs: stamps.append(_stamp()),
                           verbose=False)
    if result["status"] != "ok":
        raise SystemExit(f"the hks trial failed: {result['error']}")
    from hks.objective import splits_for

    n_train = len(splits_for(settings).train)
    queue.put(("hks", _rates(n_train, stamps), _peak_mib(), result["params"]))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per run; the first is not timed")
    parser.add_argument("--repeats", type=int, default=2, help="alternating plain/hks pairs")
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow threads in each run")
    parser.add_argument("--precision", choices=("float32", "mixed"), default="float32")
    parser.add_argument("--jit", choices=("auto", "on", "off"), default="auto")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be at least 3 (the first epoch is not timed)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    rates: dict[str, list[float]] = {"plain": [], "hks": []}
    cpu_rates: dict[str, list[float]] = {"plain": [], "hks": []}
    peaks: dict[str, float] = {"plain": 0.0, "hks": 0.0}
    params: dict[str, int] = {}
    for repeat in range(args.repeats):
        for target in (_run_plain, _run_hks):
            name, (rate, cpu_rate), peak, params[name] = run_fresh(target, args)
            rates[name].append(rate)
            cpu_rates[name].append(cpu_rate)
            peaks[name] = max(peaks[name], peak)
            print(f"  run {repeat + 1} {name:>5}: {rate:8.1f} images/s, {cpu_rate:8.1f} images per CPU-second, "
                  f"peak RSS {peak:7.0f} MiB", flush=True)

    def line(name: str, label: str) -> str:
        return (f"{label}: {statistics.median(rates[name]):8.1f} images/s, {statistics.median(cpu_rates[name]):8.1f} "
                f"per CPU-second (medians of {args.repeats}), peak RSS {peaks[name]:.0f} MiB")

    print("\n" + line("plain", "plain Keras") + "\n" + line("hks", "hks trial  "))
    ratio = statistics.median(rates["hks"]) / statistics.median(rates["plain"])
    cpu_ratio = statistics.median(cpu_rates["hks"]) / statistics.median(cpu_rates["plain"])
    print(f"ratio hks / plain: {ratio:.3f} images/s (goal >= 0.95), {cpu_ratio:.3f} per CPU-second; parameters "
          f"plain {params['plain']:,}, hks {params['hks']:,}; precision {args.precision}, jit {args.jit}, "
          f"threads {args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
