#!/usr/bin/env python3
"""What the job store costs per trial: 200 no-op trials through each store with 2 worker processes,
against the same 200 trials with hyperopt's in-process ``Trials``, in the same invocation.

Both run ``fmin`` with TPE over the same small space; the objective returns at once, so a trial's
time is hyperopt's suggestion plus, for a store, the round trip master -> store -> worker -> store
-> master. The workers are started (and seen live) before the clock starts: their start-up is not
dispatch. Prints seconds, milliseconds per trial and the overhead per trial against in-process.

    python bench/dispatch_overhead.py [--trials 200] [--postgres URL]

PostgreSQL: --postgres, else HKS_TEST_POSTGRES_URL (``source .ci/postgres.sh`` starts one);
without either only SQLite is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hyperopt import Trials, fmin, hp, tpe  # noqa: E402

from hks.store import open_store  # noqa: E402
from hks.store_trials import StoreTrials  # noqa: E402

SPACE = {"x": hp.uniform("x", -5.0, 5.0), "y": hp.choice("y", ["a", "b", "c"])}
SPACE_NAME = "bench.dispatch_overhead"
OBJECTIVE = f"{SPACE_NAME}:no_op"
WORKERS = 2


def no_op(point, settings=None, *, tid=None, on_epoch=None, **_):
    """A trial that takes no time: all that is measured is dispatch."""
    return {"status": "ok", "loss": float(point["x"]) ** 2, "space": point, "tid": tid}


def in_process(trials_count: int, seed: int) -> float:
    import numpy as np

    started = time.perf_counter()
    fmin(no_op, SPACE, algo=tpe.suggest, max_evals=trials_count, trials=Trials(),
         rstate=np.random.default_rng(seed), show_progressbar=False)
    return time.perf_counter() - started


def _start_workers(url: str, exp_key: str, results_dir: str) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HKS_THREADS": "1"}
    command = [sys.executable, "-m", "hks.worker", "--store", url, "--experiment-name", exp_key,
               "--space", SPACE_NAME, "--objective", OBJECTIVE, "--results-dir", results_dir]
    return [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(WORKERS)]


def through_store(url: str, trials_count: int, seed: int) -> float:
    import numpy as np

    from hks.config import Settings
    from hks.distributed import register_experiment

    exp_key = f"bench_{uuid.uuid4().hex[:8]}"
    with open_store(url) as store, tempfile.TemporaryDirectory() as results_dir:
        settings = Settings(experiment_name=exp_key, space=SPACE_NAME, objective=OBJECTIVE, results_dir=results_dir)
        register_experiment(store, settings, SPACE)
        workers = _start_workers(url, exp_key, results_dir)
        try:
            while len(store.live_workers(exp_key, since=time.time() - 60)) < WORKERS:
                if any(w.poll() is not None for w in workers):
                    raise SystemExit("a worker exited at start-up: run one by hand to see why")
                time.sleep(0.1)
            trials = StoreTrials(store, exp_key, max_attempts=3, lease_seconds=60)
            started = time.perf_counter()
            fmin(no_op, SPACE, algo=tpe.suggest, max_evals=trials_count, trials=trials,
                 rstate=np.random.default_rng(seed), show_progressbar=False, return_argmin=False)
            elapsed = time.perf_counter() - started
            done = store.count(exp_key, ("done",))
            if done != trials_count:
                raise SystemExit(f"only {done}/{trials_count} trials done through {store.url}")
            return elapsed
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait()
            store.delete_experiment(exp_key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--postgres", default=os.environ.get("HKS_TEST_POSTGRES_URL", ""))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.trials
    baseline = in_process(n, args.seed)
    print(f"{'in-process Trials':<22} {baseline:7.2f} s  {1000 * baseline / n:7.1f} ms/trial", flush=True)
    stores = {"SQLite": None, "PostgreSQL": args.postgres or None}
    with tempfile.TemporaryDirectory() as folder:
        stores["SQLite"] = f"sqlite:///{Path(folder) / 'store.sqlite3'}"
        for name, url in stores.items():
            if url is None:
                print(f"{name:<22} skipped: pass --postgres URL or source .ci/postgres.sh")
                continue
            elapsed = through_store(url, n, args.seed)
            overhead = 1000 * (elapsed - baseline) / n
            print(f"{name + f' + {WORKERS} workers':<22} {elapsed:7.2f} s  {1000 * elapsed / n:7.1f} ms/trial  "
                  f"overhead {overhead:+6.1f} ms/trial  ratio {elapsed / baseline:5.2f}x in-process", flush=True)


if __name__ == "__main__":
    main()
