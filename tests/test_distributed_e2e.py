"""End to end with real processes: a master (hyperopt_optimize.py) and workers (python -m hks worker)
over SQLite and a real PostgreSQL server, with workers and the master killed along the way."""

from __future__ import annotations

import signal

import pytest
from distributed_helpers import (
    OBJECTIVE,
    SPACE,
    Proc,
    assert_each_trial_done_once,
    master_args,
    wait_until,
    worker_args,
)
from needs import unavailable
from store_fixtures import postgres_url, unique_exp_key

from hks.store import open_store
from hks.store import protocol as p


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return postgres_url()


@pytest.fixture
def run(tmp_path, url):
    """Start processes with logs in tmp_path; all are killed at the end; the experiment is dropped."""
    procs: list[Proc] = []
    exp_key = unique_exp_key("e2e")
    store = open_store(url)

    def start(name: str, args: list[str], **env: str) -> Proc:
        proc = Proc(args, tmp_path / f"{name}.log", **env)
        procs.append(proc)
        return proc

    start.exp_key, start.store, start.results = exp_key, store, tmp_path / "results"
    yield start
    for proc in procs:
        proc.close()
    store.delete_experiment(exp_key)
    store.close()


def test_a_master_and_two_workers_do_every_trial_exactly_once(run, url):
    exp, results = run.exp_key, run.results
    master = run("master", master_args(url, exp, results, 6, "--lease-seconds", "5"), HKS_TEST_TRIAL_SECONDS="0.2")
    workers = [run(f"worker{i}", worker_args(url, exp, results), HKS_TEST_TRIAL_SECONDS="0.2") for i in range(2)]
    assert master.wait(120) == 0, master.text()
    assert _leave_when_finished(workers) == [0, 0], [w.text() for w in workers]
    jobs = assert_each_trial_done_once(run.store, exp, results, 6)
    assert all("serving experiment" in w.text() for w in workers)
    assert all([m["epoch"] for m in job.metrics] == [1, 2] for job in jobs)
    log = master.text()
    assert "trial 6/6:" in log and "best" in log


def _leave_when_finished(workers) -> list[int]:
    """Once the master has finished the experiment, idle workers notice it and exit by themselves
    (within ``FINISHED_CHECK_SECONDS``); exit codes of those that did, with the reason logged."""
    codes = [worker.wait(60) for worker in workers]
    assert all("is finished; exiting" in worker.text() for worker in workers), [w.text()[-500:] for w in workers]
    return codes


def test_a_sigkilled_worker_s_trial_is_requeued_after_its_lease_and_finished_by_the_other(run, url):
    exp, results, store = run.exp_key, run.results, run.store
    master = run("master", master_args(url, exp, results, 4, "--lease-seconds", "3"), HKS_TEST_TRIAL_SECONDS="1.2")
    doomed = run("doomed", worker_args(url, exp, results), HKS_TEST_TRIAL_SECONDS="1.2")

    def doomed_job():
        return [j for j in store.load(exp) if j.state == p.RUNNING and f":{doomed.pid}:" in (j.owner or "")]

    wait_until(lambda: bool(doomed_job()), 60, "the first worker to run a trial", (master, doomed))
    tid = doomed_job()[0].tid
    survivor = run("survivor", worker_args(url, exp, results), HKS_TEST_TRIAL_SECONDS="1.2")
    doomed.kill()
    assert master.wait(120) == 0, master.text()
    jobs = assert_each_trial_done_once(store, exp, results, 4)
    lost = jobs[tid]
    assert lost.attempts == 2
    assert f":{survivor.pid}:" in lost.result["worker"]
    assert _leave_when_finished([survivor]) == [0]


def test_sigterm_releases_the_running_trial_at_once(run, url):
    exp, results, store = run.exp_key, run.results, run.store
    _register(store, exp)
    store.insert_jobs([p.Job(exp, 0, doc={"misc": {"tid": 0, "vals": {"x": [0.5], "shape": [0]}}})])
    worker = run("worker", worker_args(url, exp, results), HKS_TEST_TRIAL_SECONDS="600")
    wait_until(lambda: store.count(exp, (p.RUNNING,)) == 1, 60, "the worker to start the trial", (worker,))
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 143
    job = store.load(exp)[0]
    # The lease is 60 s: only an explicit release puts the trial back this soon, uncharged.
    assert (job.state, job.owner, job.attempts) == (p.NEW, None, 0)
    assert "trial 1 released" in worker.text()
    assert store.live_workers(exp, since=0) == []


def test_a_killed_and_restarted_master_resumes_with_no_trial_lost_or_repeated(run, url):
    exp, results, store = run.exp_key, run.results, run.store
    # 10 trials: killed, the first master leaves at most 2 running and 3 queued (one per idle worker plus one)
    # beside what is done, so the workers cannot finish the search before the second master starts
    args = master_args(url, exp, results, 10, "--lease-seconds", "5")
    first = run("master1", args, HKS_TEST_TRIAL_SECONDS="0.5")
    workers = [run(f"worker{i}", worker_args(url, exp, results), HKS_TEST_TRIAL_SECONDS="0.5") for i in range(2)]
    wait_until(lambda: store.count(exp, p.FINAL_STATES) >= 2, 90, "two finished trials", (first, *workers))
    first.kill()
    second = run("master2", args, HKS_TEST_TRIAL_SECONDS="0.5")
    assert second.wait(120) == 0, second.text()
    assert_each_trial_done_once(store, exp, results, 10)
    assert "resuming search:" in second.text()
    assert _leave_when_finished(workers) == [0, 0]


def _register(store, exp_key: str) -> None:
    import objectives_for_tests

    from hks.config import Settings
    from hks.experiment import register

    settings = Settings(experiment_name=exp_key, space=SPACE, objective=OBJECTIVE, lease_seconds=60.0)
    register(store, settings, objectives_for_tests.SPACE, objectives_for_tests.quadratic)


def test_a_worker_with_another_space_or_objective_is_refused(run, url):
    exp, results, store = run.exp_key, run.results, run.store
    _register(store, exp)
    other_space = run("space", worker_args(url, exp, results, "--space", "hks.space"))
    other_objective = run("objective", worker_args(url, exp, results, "--objective", "hks.objective:run_trial"))
    assert other_space.wait(60) == 2
    assert other_objective.wait(60) == 2
    space_error = other_space.text().strip().splitlines()
    assert len(space_error) == 1 and space_error[0].startswith("hks: error: this worker's search space 'hks.space'")
    assert f"start the worker with --space {SPACE}" in space_error[0]
    assert f"start the worker with --objective {OBJECTIVE}" in other_objective.text()


def test_when_every_local_worker_fails_its_setup_the_master_stops_with_their_error(tmp_path):
    import sys

    results = tmp_path / "results"
    args = [sys.executable, "hyperopt_optimize.py", "--workers", "2", "--max-evals", "3", "--space", SPACE,
            "--objective", "tests.objectives_for_tests:missing_data", "--data-dir", "/nowhere", "--no-plots",
            "--results-dir", str(results), "--experiment-name", "no_data"]
    master = Proc(args, tmp_path / "master.log")
    try:
        assert master.wait(120) == 2, master.text()
    finally:
        master.close()
    last = master.text().strip().splitlines()[-1]
    assert last.startswith("hks: error: all 2 local workers exited; the last said: /nowhere/cifar-100-python.tar.gz")
    assert "run again to resume" in last
    with open_store(f"sqlite:///{results / 'store.sqlite3'}") as store:
        jobs = store.load("no_data")
    assert jobs and all(job.state == p.NEW and job.attempts == 0 for job in jobs)  # released, nothing charged


def test_hyperopt_optimize_with_local_workers_trains_real_keras_trials(tmp_path, cifar10_dir):
    """The classic entry point, --workers 2 over a local SQLite store, the real objective and data."""
    import sys

    results = tmp_path / "results"
    args = [sys.executable, "hyperopt_optimize.py", "--workers", "2", "--max-evals", "2", "--epochs", "1",
            "--dataset", "cifar10", "--data-dir", str(cifar10_dir), "--no-download", "--dataset-size", "300",
            "--threads", "1", "--no-plots", "--results-dir", str(results), "--trials-file", str(tmp_path / "t.pkl"),
            "--experiment-name", "keras_e2e", "--lease-seconds", "30", "--gpu", "-1"]
    master = Proc(args, tmp_path / "master.log")
    try:
        assert master.wait(400) == 0, master.text()
    finally:
        master.close()
    with open_store(f"sqlite:///{results / 'store.sqlite3'}") as store:
        jobs = store.load("keras_e2e")
    assert [job.state for job in jobs] == [p.DONE, p.DONE], [job.result for job in jobs]
    for job in jobs:
        assert job.result["status"] == "ok", job.result.get("error")
        assert 0.0 <= job.result["fine_best_accuracy"] <= 1.0 and job.result["params"] > 0
        assert [m["epoch"] for m in job.metrics] == [1] and "val_fine_accuracy" in job.metrics[0]
    assert len(list(results.glob("model_*.txt.json"))) == 2
    assert "trial 2/2:" in master.text()
    assert len(list((results / "workers").glob("worker-*.log"))) == 2


def test_a_worker_rides_out_a_postgresql_restart(tmp_path):
    import glob
    import os
    import subprocess

    from store_fixtures import postgres_url

    url, folder = postgres_url(), os.environ.get("HKS_TEST_POSTGRES_DIR", "")
    pg_ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not folder or not pg_ctl:
        unavailable("needs the server started by .ci/postgres.sh (HKS_TEST_POSTGRES_DIR) to restart it")
    exp = unique_exp_key("outage")
    results = tmp_path / "results"
    with open_store(url) as store:
        _register(store, exp)
        store.insert_jobs([p.Job(exp, tid, doc={"misc": {"tid": tid, "vals": {"x": [0.5], "shape": [0]}}})
                           for tid in range(3)])
        worker = Proc(worker_args(url, exp, results), tmp_path / "worker.log", HKS_TEST_TRIAL_SECONDS="2")
        try:
            wait_until(lambda: store.count(exp, p.FINAL_STATES) >= 1, 60, "a first trial", (worker,))
            subprocess.run(["runuser", "-u", "postgres", "--", pg_ctl[-1], "-D", f"{folder}/data", "-m", "fast",
                            "-w", "-l", f"{folder}/server.log", "restart"], check=True, capture_output=True)
            wait_until(lambda: store.count(exp, p.FINAL_STATES) == 3, 90, "every trial after the restart", (worker,))
            assert worker.popen.poll() is None, worker.text()
            assert [job.state for job in store.load(exp)] == [p.DONE] * 3
        finally:
            worker.close()
            store.delete_experiment(exp)
