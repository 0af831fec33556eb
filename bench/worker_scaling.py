#!/usr/bin/env python3
"""Does a search go faster with more workers, and what does a worker cost against a plain Keras script?
Real Keras trials on the CIFAR-10 mini archive, in one invocation:

* hks: 1 and then 2 single-threaded worker processes (``python -m hks.worker``) over an SQLite store,
  each configuration given the same queue of identical trials (the demo point,
  ``hks.space.demo_point``, so every trial costs the same and neither run is favoured by the draw);
* the baseline, what a user would otherwise run: 1 and then 2 copies of a plain Keras script, the
  same architecture, images, batch size and epochs written by hand (``bench/train_throughput.py``'s
  plain model and input; nothing of hks), each training its share of the same trials one after another.

Throughput is trial-epochs per minute between the first reservation (the script's first trial) and the
last result, so process start-up (importing TensorFlow) is left out; a worker's wall time with start-up
is printed too. Printed: the speed-up of 2 workers over 1 (goal >= 1.8x, which needs 2 idle cores), the
plain scripts' own speed-up (what this machine allows), and each hks configuration's throughput over the
plain scripts' with as many processes. What it does not show: trials of minutes or hours (a worker's fixed
cost per trial, about a trial process's start and the store's round trips, weighs less there), more
than 2 cores, GPUs, and other stores.

    python bench/worker_scaling.py [--trials 4] [--epochs 6] [--dataset-size 2000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import multiprocessing.queues
    import multiprocessing.synchronize

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hks.config import Settings  # noqa: E402
from hks.experiment import register  # noqa: E402
from hks.objective import run_trial  # noqa: E402
from hks.space import demo_point, for_dataset, load_space  # noqa: E402
from hks.store import open_store  # noqa: E402
from hks.store import protocol as p  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "cifar-10-mini"
SPACE = load_space("hks.space", "cifar10")  # the classic space as workers load it: cifar10 has no coarse head
# hyperopt's assignment (choice indices, values) of the demo point (hks.space.demo_point), the architecture
# bench/train_throughput.py's plain script writes out by hand.
VALS = {"lr_rate_mult": 1.0, "l2_weight_reg_mult": 1.0, "batch_size": 128.0, "optimizer": 0,
        "conv_dropout_drop_proba": 0.1, "fc_dropout_drop_proba": 0.3, "use_BN": 1,
        "first_conv": 1, "first_conv_size": 0, "residual": 1, "residual_units": 1.0, "conv_hiddn_units_mult": 1.0,
        "nb_conv_pool_layers": 0, "conv_pool_res_start_idx": 1.0, "pooling_type": 0, "conv_kernel_size": 3.0,
        "res_conv_kernel_size": 3.0, "fc_units_1_mult": 0.5, "one_more_fc": 0, "activation": 0}


def _jobs(exp_key: str, count: int) -> list[p.Job]:
    vals = {label: [value] for label, value in VALS.items()}
    return [p.Job(exp_key, tid, doc={"misc": {"tid": tid, "vals": vals}}) for tid in range(count)]


def measure(workers: int, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """Run the queue with ``workers`` processes; returns epochs, seconds and epochs per minute."""
    url = f"sqlite:///{folder / f'store{workers}.sqlite3'}"
    exp_key = f"scaling_{workers}"
    settings = Settings(dataset="cifar10", data_dir=str(args.data_dir), download=False, epochs=args.epochs,
                        patience=args.epochs, dataset_size=args.dataset_size, threads=1, plots=False,
                        experiment_name=exp_key, results_dir=str(folder / f"results{workers}"), lease_seconds=120.0)
    with open_store(url) as store:
        register(store, settings, SPACE, run_trial)
        store.insert_jobs(_jobs(exp_key, args.trials))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
        command = [sys.executable, "-m", "hks.worker", "--store", url, "--experiment-name", exp_key, "--threads", "1",
                   "--data-dir", str(args.data_dir), "--no-download", "--results-dir", settings.results_dir]
        started = time.perf_counter()
        logs = [folder / f"worker{workers}-{i}.log" for i in range(workers)]
        outputs = [log.open("w") for log in logs]
        procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT) for out in outputs]
        try:
            while store.count(exp_key, p.FINAL_STATES) < args.trials:
                if all(proc.poll() is not None for proc in procs):
                    raise SystemExit("every worker exited early; the last lines of the first one's output:\n"
                                     + "\n".join(logs[0].read_text(errors="replace").splitlines()[-5:]))
                print(f"\r  {workers} worker(s): {store.count(exp_key, p.FINAL_STATES)}/{args.trials} trials",
                      end="", flush=True)
                time.sleep(1.0)
            wall = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.terminate()
            for proc, out in zip(procs, outputs):
                proc.wait()
                out.close()
        jobs = store.load(exp_key)
    failed = [job.result.get("error") for job in jobs if job.result.get("status") != "ok"]
    if failed:
        raise SystemExit(f"trials failed: {failed}")
    epochs = sum(job.result["epochs_run"] for job in jobs)
    busy = max(job.finished_at for job in jobs) - min(job.book_time for job in jobs)
    print(f"\r  {workers} worker(s): {epochs} trial-epochs in {busy:6.1f} s of training ({wall:6.1f} s wall "
          f"with start-up): {60 * epochs / busy:6.1f} trial-epochs/min", flush=True)
    return {"epochs": epochs, "busy": busy, "wall": wall, "per_minute": 60 * epochs / busy}


def _plain_process(args: argparse.Namespace, trials: int, barrier: multiprocessing.synchronize.Barrier,
                   queue: multiprocessing.queues.Queue) -> None:
    """The baseline: a plain Keras script training ``trials`` models of the demo point, one after another,
    on the images a worker's trial trains on (``--dataset-size``, the default validation share)."""
    import keras
    import tensorflow as tf

    from bench.train_throughput import load_cifar10, plain_datasets, plain_model

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    (x_train, y_train), (x_val, y_val) = load_cifar10(args.data_dir)
    n_val = round(args.dataset_size * Settings.val_fraction)
    n_train = args.dataset_size - n_val
    train, val = plain_datasets(x_train[:n_train], y_train[:n_train], x_val[:n_val], y_val[:n_val])
    barrier.wait()  # every process has imported TensorFlow and read the archive: start together
    started = time.time()
    for _ in range(trials):
        plain_model().fit(train, validation_data=val, epochs=args.epochs, verbose=0)
        keras.backend.clear_session()
    queue.put((started, time.time(), trials * args.epochs))


def measure_plain(processes: int, args: argparse.Namespace) -> dict[str, float]:
    """The same trials split over ``processes`` plain Keras scripts started together."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_plain_process, args=(args, args.trials // processes, barrier, queue))
             for _ in range(processes)]
    for proc in procs:
        proc.start()
    outcomes = [queue.get() for _ in procs]
    for proc in procs:
        proc.join()
    epochs = sum(o[2] for o in outcomes)
    busy = max(o[1] for o in outcomes) - min(o[0] for o in outcomes)
    print(f"  {processes} plain Keras script(s): {epochs} trial-epochs in {busy:6.1f} s: "
          f"{60 * epochs / busy:6.1f} trial-epochs/min", flush=True)
    return {"epochs": epochs, "busy": busy, "per_minute": 60 * epochs / busy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--dataset-size", type=int, default=2000)
    parser.add_argument("--data-dir", type=Path, default=DATA)
    args = parser.parse_args()
    print(f"{args.trials} identical trials x {args.epochs} epochs on {args.dataset_size} CIFAR-10 mini images, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}", flush=True)
    if args.trials % 2:
        parser.error("--trials must be even (the plain scripts split them over 2 processes)")
    if _point_of_vals() != for_dataset(demo_point(), "cifar10"):  # the demo point as the cifar10 space has it
        raise SystemExit("VALS no longer encode hks.space.demo_point: update them")
    with tempfile.TemporaryDirectory() as folder:
        one = measure(1, args, Path(folder))
        two = measure(2, args, Path(folder))
    plain_one, plain_two = measure_plain(1, args), measure_plain(2, args)
    ratio = two["per_minute"] / one["per_minute"]
    ceiling = plain_two["per_minute"] / plain_one["per_minute"]
    print(f"speed-up with 2 workers: {ratio:.2f}x the throughput of 1 (goal >= 1.8x); "
          f"wall time with start-up {one['wall'] / two['wall']:.2f}x", flush=True)
    print(f"plain Keras scripts' own speed-up (2 vs 1, this machine's ceiling): {ceiling:.2f}x; "
          f"the workers reach {ratio / ceiling:.0%} of it", flush=True)
    against = one["per_minute"] / plain_one["per_minute"], two["per_minute"] / plain_two["per_minute"]
    print(f"hks against plain Keras scripts, trial-epochs/min: 1 worker {against[0]:.2f}x, "
          f"2 workers {against[1]:.2f}x; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
          flush=True)


def _point_of_vals() -> dict:
    from hyperopt import space_eval

    return space_eval(SPACE, VALS)


if __name__ == "__main__":
    main()
