"""The master over a real store: one master per experiment, results of trials that finished while no
master ran, a spent budget, and resuming a distributed search."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import objectives_for_tests
import pytest
from distributed_helpers import OBJECTIVE, SPACE
from distributed_helpers import env as child_env
from store_fixtures import LateServer, postgres_url, unique_exp_key

from hks.config import Settings
from hks.errors import ConfigError
from hks.experiment import register
from hks.runners.master import MASTER_STATE, claim_experiment
from hks.store import open_store
from hks.store import protocol as p
from hks.study import Study
from hks.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'store.sqlite3'}"


def _settings(tmp_path, url, **changes) -> Settings:
    fields = {"store": url, "experiment_name": unique_exp_key("master"), "space": SPACE, "objective": OBJECTIVE,
              "results_dir": str(tmp_path / "results"), "plots": False, "lease_seconds": 30.0, "max_evals": 4,
              **changes}
    return Settings(**fields)


def test_a_second_master_on_a_live_experiment_is_refused_and_changes_nothing(tmp_path, url):
    settings = _settings(tmp_path, url)
    with open_store(url) as store:
        register(store, settings, objectives_for_tests.SPACE, objectives_for_tests.quadratic)
        store.touch_worker(p.WorkerInfo("master:elsewhere:1", settings.experiment_name, MASTER_STATE, None,
                                        time.time()))
    with Study(settings) as study:
        with pytest.raises(ConfigError, match="another master .elsewhere:1. is running experiment") as err:
            claim_experiment(study, "master:here:2")
        assert "\n" not in str(err.value)
        assert study.store.count(settings.experiment_name) == 0


def test_a_dead_local_master_s_record_does_not_block_its_restart(tmp_path, url):
    settings = _settings(tmp_path, url)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with Study(settings) as study:
        host = os.uname().nodename
        study.store.touch_worker(p.WorkerInfo(f"master:{host}:{dead.pid}", study.exp_key, MASTER_STATE, None,
                                              time.time()))
        claim_experiment(study, f"master:{host}:{os.getpid()}")  # no error: that process is gone


def test_trials_that_finished_while_no_master_ran_get_their_json_result_on_restart(tmp_path, url):
    settings = _settings(tmp_path, url)
    with Study(settings) as study:
        study.oracle.ask(2)
        for loss in (0.5, 0.25):
            job = study.store.reserve(study.exp_key, "w", 30)
            study.store.complete(job, {"status": "ok", "loss": loss, "model_name": f"model_{loss}", "tid": job.tid})
    assert not list(Path(settings.results_dir).glob("*.txt.json"))
    with Study(settings):  # a restarted master
        written = sorted(json.loads(p_.read_text())["loss"] for p_ in Path(settings.results_dir).glob("*.txt.json"))
    assert written == [0.25, 0.5]


def test_a_restarted_master_whose_budget_is_spent_starts_no_workers_and_sends_waiting_ones_home(tmp_path, url,
                                                                                                  capsys):
    settings = _settings(tmp_path, url, max_evals=1, workers=2)
    with Study(settings) as study:
        study.oracle.ask(3)  # its master died with 3 queued; a worker finished one, spending the budget of 1
        study.store.complete(study.store.reserve(study.exp_key, "w", 30), {"status": "ok", "loss": 1.0})
    with Study(settings) as study:
        study.optimize()
    out = capsys.readouterr().out
    assert "nothing to run: 1 trials are done" in out and "started" not in out
    assert not (Path(settings.results_dir) / "workers").exists()
    with open_store(url) as store:
        assert store.get_experiment(settings.experiment_name).finished_at is not None
        worker = Worker(store, store.get_experiment(settings.experiment_name), settings, objectives_for_tests.SPACE,
                        objectives_for_tests.quadratic)
        assert worker.run() == 0  # it leaves at once, and the 2 trials queued beyond the budget are not run
        assert [job.state for job in store.load(settings.experiment_name)] == [p.DONE, p.NEW, p.NEW]
    assert f"experiment {settings.experiment_name!r} is finished; exiting after 0 trials" in capsys.readouterr().out


def _search(tmp_path, name: str, evals: int) -> list:
    args = [sys.executable, "-m", "hks", "search", "--space", SPACE, "--objective", OBJECTIVE, "--algo", "rand",
            "--workers", "1", "--max-evals", str(evals), "--no-plots", "--results-dir", str(tmp_path / name),
            "--experiment-name", "resume_test"]
    done = subprocess.run(args, cwd=ROOT, env=child_env(HKS_TEST_TRIAL_SECONDS="0"), capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    with open_store(f"sqlite:///{tmp_path / name / 'store.sqlite3'}") as store:
        return [(job.tid, job.doc["misc"]["vals"]) for job in store.load("resume_test")]


def test_a_resumed_distributed_search_makes_the_suggestions_of_an_uninterrupted_one(tmp_path):
    _search(tmp_path, "resumed", 3)
    resumed = _search(tmp_path, "resumed", 6)
    straight = _search(tmp_path, "straight", 6)
    assert [tid for tid, _ in resumed] == list(range(6))
    assert resumed == straight


@pytest.mark.parametrize("kind", ["sqlite", "mongomock", "postgresql"])
def test_the_record_cache_sees_every_change_while_watching_only_what_can_change(tmp_path, kind):
    from store_fixtures import make_store

    from hks.store.cache import RecordCache

    store = make_store(kind, tmp_path)
    exp = unique_exp_key("cache")
    try:
        store.insert_jobs([p.Job(exp, tid) for tid in range(3)])
        cache = RecordCache(store, exp)
        assert [j.tid for j in cache.refresh()] == [0, 1, 2]
        done = store.reserve(exp, "w", 30)
        store.complete(done, {"status": "ok", "loss": 1.0})
        assert [(j.tid, j.state) for j in cache.refresh()] == [(0, p.DONE)]
        watch = p.Watch((1, 2), 2)
        assert set(store.versions(exp, watch)) == {1, 2}  # the finished trial is no longer read
        store.insert_jobs([p.Job(exp, 3)])
        running = store.reserve(exp, "w", 30)
        assert [(j.tid, j.state) for j in cache.refresh()] == [(1, p.RUNNING), (3, p.NEW)]
        assert cache.refresh() == []
        assert cache.counts() == {p.NEW: 2, p.RUNNING: 1, p.DONE: 1, p.FAILED: 0} and running.tid == 1
    finally:
        store.delete_experiment(exp)
        store.close()


def test_a_master_started_before_its_database_waits_for_it_then_registers_the_search(tmp_path, capsys):
    real = postgres_url()
    address = re.search(r"@([^/?]+)", real)[1]
    database = LateServer(address)  # refuses connections for 3 s, then forwards to the real server
    settings = _settings(tmp_path, real.replace(address, f"127.0.0.1:{database.port}"), store_patience=60.0)
    opens = threading.Timer(3.0, database.open)
    opens.start()
    started = time.monotonic()
    try:
        with Study(settings) as study:
            assert time.monotonic() - started >= 2.5
            assert study.store.get_experiment(settings.experiment_name) is not None
    finally:
        opens.cancel()
        database.close()
    out = capsys.readouterr().out
    assert "the job store is unreachable while connecting to" in out and "retrying for up to 60s" in out
    assert "the job store is back after" in out


def test_a_master_without_local_workers_says_how_to_start_them_without_the_password():
    from types import SimpleNamespace

    from hks.runners.master import workers_wanted_line

    line = workers_wanted_line(SimpleNamespace(url="postgresql://hks:s3cret@db:5432/hks", exp_key="exp one"))
    assert "python -m hks worker --store postgresql://hks@db:5432/hks --experiment-name 'exp one'" in line
    assert "s3cret" not in line and "HKS_STORE_PASSWORD" in line and "--workers N" in line
    assert "HKS_STORE_PASSWORD" not in workers_wanted_line(SimpleNamespace(url="sqlite:///r.db", exp_key="e"))
