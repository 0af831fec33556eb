#!/usr/bin/env python3
"""How close distributed hks gets to the ideal throughput, and what the master costs per trial.

Part 1, throughput: 1, 16 and 64 real worker processes (``python -m hks worker``) serve a search whose
objective sleeps 2-6 s (mean 4 s, drawn per trial id, independent of the sampler), through SQLite
and PostgreSQL, with hks's master (TPE) in this process. The ideal is ``workers / mean sleep`` trials
per second: what a perfect dispatcher with zero overhead would reach. Printed: trials/s, the ideal,
their ratio, the workers' idle fraction (1 - busy time / (workers x wall time)), worker start-up time
(spawn to first presence record) and resident memory per worker.

Part 2, the master's cost per trial with many trials stored: the store is filled with 1,000 and
5,000 finished trials, then each of 20 rounds completes one pending trial (as a worker would),
reads what changed and asks TPE for the next point, which is inserted. Printed: milliseconds per
trial for the read, the suggestion and the insert.

    python bench/dispatch_overhead.py [--workers 1,16,64] [--trials 300] [--postgres URL]

PostgreSQL: --postgres, else HKS_TEST_POSTGRES_URL (``source .ci/postgres.sh`` starts one).
What the numbers do not show: a 2-core machine runs the master, the database and up to 64 workers
at once, so CPU contention, not the protocol, is part of every figure here; a single worker runs
fewer trials (see the table) to keep the run short; network latency between machines is absent.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hks.config import Settings

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hyperopt import hp  # noqa: E402

SPACE = {"x": hp.uniform("x", -5.0, 5.0), "y": hp.choice("y", ["a", "b", "c"])}
SPACE_NAME = "bench.dispatch_overhead"
OBJECTIVE = f"{SPACE_NAME}:sleep_trial"
SLEEP_MIN, SLEEP_MAX = 2.0, 6.0
SINGLE_WORKER_TRIALS = 25


def sleep_seconds(tid: int) -> float:
    return SLEEP_MIN + (SLEEP_MAX - SLEEP_MIN) * random.Random(tid).random()


def sleep_trial(point: dict[str, Any], settings: Settings | None = None, *, tid: int = 0, **_: Any) -> dict[str, Any]:
    """A trial that only takes time: 2-6 s, then a loss from the point."""
    seconds = sleep_seconds(tid)
    time.sleep(seconds)
    return {"status": "ok", "loss": float(point["x"]) ** 2 + (point["y"] != "a"), "slept": seconds}


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _settings(url: str, exp_key: str, results_dir: str, trials: int):
    from hks.config import Settings

    return Settings(store=url, experiment_name=exp_key, space=SPACE_NAME, objective=OBJECTIVE, algo="tpe",
                    results_dir=results_dir, max_evals=trials, plots=False, lease_seconds=60.0, seed=0)


def _start_workers(url: str, exp_key: str, results_dir: str, count: int) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HKS_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "hks.worker", "--store", url, "--experiment-name", exp_key,
               "--space", SPACE_NAME, "--objective", OBJECTIVE, "--results-dir", results_dir]
    return [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(count)]


def throughput(url: str, workers: int, trials: int) -> dict[str, float]:
    from hks.experiment import register
    from hks.store import open_store
    from hks.study import Study

    exp_key = f"bench_{uuid.uuid4().hex[:8]}"
    with open_store(url) as store, tempfile.TemporaryDirectory() as results_dir:
        settings = _settings(url, exp_key, results_dir, trials)
        register(store, settings, SPACE, sleep_trial)  # workers wait for the experiment record
        spawned = time.perf_counter()
        procs = _start_workers(url, exp_key, results_dir, workers)
        try:
            while len(store.live_workers(exp_key, since=time.time() - 60)) < workers:
                if any(w.poll() is not None for w in procs):
                    raise SystemExit("a worker exited at start-up: run one by hand to see why")
                time.sleep(0.05)
            startup = time.perf_counter() - spawned
            rss = statistics.mean(_rss_mb(w.pid) for w in procs)
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), Study(settings) as study:
                study.optimize()
            wall = time.perf_counter() - started
            jobs = [j for j in store.load(exp_key) if j.state == "done"]
            if len(jobs) < trials:
                raise SystemExit(f"only {len(jobs)}/{trials} trials done through {store.url}")
        finally:
            for w in procs:
                w.terminate()
            for w in procs:
                w.wait()
            store.delete_experiment(exp_key)
    mean_sleep = statistics.mean(j.result["slept"] for j in jobs)
    busy = sum(j.finished_at - j.book_time for j in jobs)
    ideal = workers / mean_sleep
    return {"rate": len(jobs) / wall, "ideal": ideal, "ratio": len(jobs) / wall / ideal,
            "idle": 1 - busy / (workers * wall), "startup": startup, "rss": rss, "trials": len(jobs)}


def master_cost(url: str, stored: int, rounds: int = 20) -> dict[str, float]:
    from hks.config import Settings
    from hks.experiment import register
    from hks.oracle import Oracle
    from hks.samplers import make_sampler
    from hks.store import open_store
    from hks.store import protocol as p

    exp_key = f"cost_{uuid.uuid4().hex[:8]}"
    settings = Settings(experiment_name=exp_key, space=SPACE_NAME, objective=OBJECTIVE, algo="tpe", seed=1)
    with open_store(url) as store:
        try:
            register(store, settings, SPACE, sleep_trial)
            filler = Oracle(store, exp_key, make_sampler(settings.replace(algo="rand"), SPACE))
            for start in range(0, stored, 500):
                jobs = filler.ask(min(500, stored - start))
                for _ in jobs:
                    reserved = store.reserve(exp_key, "filler", 60)
                    store.complete(reserved, {"status": "ok", "loss": random.random(), "slept": 0})
            oracle = Oracle(store, exp_key, make_sampler(settings, SPACE))
            oracle.refresh()  # the master's first read, at start-up: not a per-trial cost
            [pending] = oracle.ask(1)
            timings = {"read": 0.0, "suggest": 0.0, "insert": 0.0}
            for _ in range(rounds):
                job = store.reserve(exp_key, "worker", 60)
                store.complete(job, {"status": "ok", "loss": random.random(), "slept": 0})
                t0 = time.perf_counter()
                oracle.refresh()
                t1 = time.perf_counter()
                start = oracle.records.next_tid()
                docs = oracle.sampler.suggest(oracle.records.records(), [start])
                t2 = time.perf_counter()
                new = [p.Job(exp_key, start, doc=docs[0])]
                store.insert_jobs(new)
                oracle.records.jobs[start] = new[0]
                t3 = time.perf_counter()
                for key, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2)):
                    timings[key] += seconds
        finally:
            store.delete_experiment(exp_key)
    return {key: 1000 * value / rounds for key, value in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,16,64")
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--stored", default="1000,5000")
    parser.add_argument("--postgres", default=os.environ.get("HKS_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        stores = {"SQLite": f"sqlite:///{Path(folder) / 'store.sqlite3'}", "PostgreSQL": args.postgres or None}
        print(f"Part 1: throughput, sleep objective {SLEEP_MIN:g}-{SLEEP_MAX:g} s per trial, TPE master")
        print(f"{'store':<11} {'workers':>7} {'trials':>6} {'trials/s':>9} {'ideal':>7} {'ratio':>6} {'idle':>6} "
              f"{'start-up s':>10} {'RSS MB/worker':>13}")
        for name, url in stores.items():
            if url is None:
                print(f"{name:<11} skipped: pass --postgres URL or source .ci/postgres.sh")
                continue
            for workers in (int(w) for w in args.workers.split(",")):
                trials = SINGLE_WORKER_TRIALS if workers == 1 else args.trials
                r = throughput(url, workers, trials)
                print(f"{name:<11} {workers:>7} {r['trials']:>6} {r['rate']:>9.2f} {r['ideal']:>7.2f} "
                      f"{r['ratio']:>6.2f} {r['idle']:>6.1%} {r['startup']:>10.1f} {r['rss']:>13.0f}", flush=True)
        print("\nPart 2: the master's cost per trial (read what changed + TPE suggestion + insert), ms")
        print(f"{'store':<11} {'stored trials':>13} {'read':>7} {'suggest':>8} {'insert':>7} {'total':>7}")
        for name, url in stores.items():
            if url is None:
                continue
            for stored in (int(n) for n in args.stored.split(",")):
                c = master_cost(url, stored)
                print(f"{name:<11} {stored:>13} {c['read']:>7.1f} {c['suggest']:>8.1f} {c['insert']:>7.1f} "
                      f"{sum(c.values()):>7.1f}", flush=True)


if __name__ == "__main__":
    main()
