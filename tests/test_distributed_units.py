"""The distributed pieces in one process: the oracle and the master's queue over a store, the worker
loop, store URLs and their errors, local workers' command lines."""

from __future__ import annotations

import os
import time

import objectives_for_tests
import pytest
from distributed_helpers import OBJECTIVE, SPACE
from store_fixtures import make_store, unique_exp_key

from hks.checkpoint import trial_checkpoint
from hks.config import Settings, resolve
from hks.errors import ConfigError, DatasetError, StoreError
from hks.experiment import register
from hks.local_workers import threads_per_worker, worker_command
from hks.oracle import Oracle
from hks.runners.master import Master
from hks.samplers import make_sampler
from hks.store import mask_url, open_store, store_url
from hks.store import protocol as p
from hks.store.hyperopt_docs import finished_result
from hks.worker import Worker, requeue_lost, trial_settings


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    store = make_store(request.param, tmp_path)
    yield store
    store.close()


def _settings(tmp_path, **changes) -> Settings:
    return Settings(experiment_name=unique_exp_key(), space=SPACE, objective=OBJECTIVE, lease_seconds=5.0,
                    results_dir=str(tmp_path / "results"), **changes)


def register_experiment(store, settings, space=objectives_for_tests.SPACE):
    return register(store, settings, space, objectives_for_tests.quadratic)


def _worker(store, settings, objective=objectives_for_tests.quadratic) -> Worker:
    experiment = register_experiment(store, settings, objectives_for_tests.SPACE)
    return Worker(store, experiment, settings, objectives_for_tests.SPACE, objective)


@pytest.mark.parametrize("algo", ["tpe", "rand", "anneal"])
def test_the_oracle_drives_a_worker_through_the_store_with_any_hyperopt_sampler(store, tmp_path, algo, monkeypatch):
    monkeypatch.setenv("HKS_TEST_TRIAL_SECONDS", "0")
    settings = _settings(tmp_path, algo=algo, n_startup_trials=2)
    worker = _worker(store, settings)
    oracle = Oracle(store, settings.experiment_name, make_sampler(settings, objectives_for_tests.SPACE))
    for _ in range(6):
        oracle.refresh()
        oracle.ask(1)
        assert worker.run(max_trials=1) == 1
        worker.trials_run = 0
    oracle.refresh()
    jobs = oracle.records.records()
    assert [j.tid for j in jobs] == list(range(6))
    assert [j.result["status"] for j in jobs] == ["ok"] * 6
    assert all(j.state == p.DONE and j.result["space"]["x"] == j.vals()["x"] for j in jobs)


def test_a_restarted_oracle_sees_every_job_and_continues_the_tids(store, tmp_path):
    settings = _settings(tmp_path)
    register_experiment(store, settings, objectives_for_tests.SPACE)
    vals = {"x": [0.1], "shape": [0], "bump": []}
    store.insert_jobs([p.Job(settings.experiment_name, tid, doc={"misc": {"tid": tid, "vals": vals}})
                       for tid in range(3)])
    job = store.reserve(settings.experiment_name, "w", 5)
    store.complete(job, {"status": "ok", "loss": 0.81})
    oracle = Oracle(store, settings.experiment_name, make_sampler(settings, objectives_for_tests.SPACE))
    oracle.refresh()
    assert oracle.records.counts() == {p.NEW: 2, p.RUNNING: 0, p.DONE: 1, p.FAILED: 0}
    assert [job.tid for job in oracle.ask(2)] == [3, 4]


def test_a_trial_failed_by_lost_workers_is_a_failed_result_not_a_lost_trial(store, tmp_path):
    settings = _settings(tmp_path)
    register_experiment(store, settings, objectives_for_tests.SPACE)
    store.insert_jobs([p.Job(settings.experiment_name, 0, doc={"misc": {"tid": 0, "vals": {"x": [0.0],
                                                                                          "shape": [0]}}})])
    store.reserve(settings.experiment_name, "w", lease_seconds=0.01)
    time.sleep(0.05)
    assert [job.tid for job in store.requeue_expired(settings.experiment_name, max_attempts=1)] == [0]
    job = store.load(settings.experiment_name)[0]
    assert job.state == p.FAILED
    result = finished_result(job, objectives_for_tests.SPACE)
    assert result["status"] == "fail" and result["error_type"] == p.WORKER_LOST
    assert result["space"] == {"x": 0.0, "shape": "flat"}


def test_a_trial_given_up_loses_its_checkpoint_and_one_requeued_keeps_it(store, tmp_path):
    settings = _settings(tmp_path, max_attempts=2)
    register_experiment(store, settings)
    store.insert_jobs([p.Job(settings.experiment_name, tid, doc={"misc": {"tid": tid, "vals": {"x": [0.0],
                                                                                               "shape": [0]}}})
                       for tid in range(2)])
    files = [trial_checkpoint(settings, settings.experiment_name, tid) for tid in range(2)]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"weights")
    store.reserve(settings.experiment_name, "w", lease_seconds=0.01)  # trial 0: lost twice
    time.sleep(0.05)
    requeue_lost(store, settings.experiment_name, settings)
    store.reserve(settings.experiment_name, "w", lease_seconds=0.01)
    store.reserve(settings.experiment_name, "w", lease_seconds=0.01)  # trial 1: lost once
    time.sleep(0.05)
    requeue_lost(store, settings.experiment_name, settings)
    assert [(job.tid, job.state) for job in store.load(settings.experiment_name)] == [(0, p.FAILED), (1, p.NEW)]
    assert [path.exists() for path in files] == [False, True]  # nobody will resume trial 0; trial 1 resumes from it


class _StudyStub:
    """What the master reads of a study to size its queue."""

    def __init__(self, store, settings):
        self.store, self.settings, self.exp_key = store, settings, settings.experiment_name


def test_the_queue_follows_the_idle_live_workers_unless_fixed(store, tmp_path):
    settings = _settings(tmp_path)
    master = Master(_StudyStub(store, settings), None)
    master.live = master._live_workers()
    assert master.queue_target(running=0) == 1
    now = time.time()
    for i in range(16):
        store.touch_worker(p.WorkerInfo(f"w{i}", settings.experiment_name, "idle", None, now))
    store.touch_worker(p.WorkerInfo("gone", settings.experiment_name, "idle", None, now - 60))
    store.touch_worker(p.WorkerInfo("master:h:1", settings.experiment_name, "master", None, now))
    master.live = master._live_workers()
    assert master.live == 16
    assert master.queue_target(running=0) == 16 + 2  # every idle worker, plus an eighth in reserve
    assert master.queue_target(running=10) == 6 + 2
    master.study.settings = settings.replace(queue_len=5)
    assert master.queue_target(running=0) == 5


def test_an_idle_worker_waits_then_exits_after_its_idle_timeout(store, tmp_path, capsys):
    worker = _worker(store, _settings(tmp_path, idle_timeout=0.5))
    started = time.monotonic()
    assert worker.run() == 0
    assert time.monotonic() - started >= 0.5  # it waited for work that long before giving up
    assert "idle for" in capsys.readouterr().out
    assert store.live_workers(worker.exp_key, since=0) == []


def _one_job(store, settings) -> None:
    store.insert_jobs([p.Job(settings.experiment_name, 0, doc={"misc": {"tid": 0, "vals": {"x": [2.0],
                                                                                          "shape": [0]}}})])


def test_an_objective_that_raises_gives_a_failed_trial_and_the_worker_goes_on(store, tmp_path):
    def broken(point, settings, **_):
        raise ValueError("bad point")

    settings = _settings(tmp_path)
    worker = _worker(store, settings, broken)
    _one_job(store, settings)
    assert worker.run(max_trials=1) == 1
    job = store.load(settings.experiment_name)[0]
    assert job.state == p.DONE
    assert job.result["status"] == "fail" and job.result["error"] == "ValueError: bad point"
    assert job.result["space"] == {"x": 2.0, "shape": "flat"}


def test_a_setup_error_on_a_worker_releases_its_trial_for_another(store, tmp_path):
    def no_data(point, settings, **_):
        raise DatasetError("the dataset archive is missing")

    settings = _settings(tmp_path)
    worker = _worker(store, settings, no_data)
    _one_job(store, settings)
    with pytest.raises(DatasetError):
        worker.run()
    job = store.load(settings.experiment_name)[0]
    assert (job.state, job.attempts) == (p.NEW, 0)


def test_the_worker_stores_per_epoch_metrics_and_the_point_it_rebuilt(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HKS_TEST_TRIAL_SECONDS", "0")
    settings = _settings(tmp_path)
    worker = _worker(store, settings)
    _one_job(store, settings)
    worker.run(max_trials=1)
    job = store.load(settings.experiment_name)[0]
    assert [m["epoch"] for m in job.metrics] == [1, 2]
    assert job.metrics[0]["val_fine_accuracy"] == pytest.approx(-1.0)
    assert job.result["space"] == {"x": 2.0, "shape": "flat"} and job.result["worker"] == worker.worker_id


def test_a_master_restarted_with_another_space_is_refused(store, tmp_path):
    settings = _settings(tmp_path)
    register_experiment(store, settings, objectives_for_tests.SPACE)
    from hks.space import SPACE as CLASSIC

    with pytest.raises(ConfigError, match="was made with --space 'tests.objectives_for_tests', but this run has "
                                          "'hks.space'"):
        register_experiment(store, settings.replace(space="hks.space"), CLASSIC)


def test_workers_take_paths_threads_and_gpu_from_their_machine_and_the_rest_from_the_master(tmp_path):
    master = Settings(epochs=7, dataset="cifar10", data_dir="/master/data", threads=8, lease_seconds=9.0)
    experiment = p.Experiment("e", "f", "hks.space", "hks.objective:run_trial", master.to_dict())
    local = Settings(data_dir="/worker/data", threads=2, gpu="1", epochs=99)
    merged = trial_settings(experiment, local)
    assert (merged.epochs, merged.dataset, merged.lease_seconds) == (7, "cifar10", 9.0)
    assert (merged.data_dir, merged.threads, merged.gpu) == ("/worker/data", 2, "1")


def test_store_urls_follow_flags_then_the_classic_mongo_variables_then_local_workers():
    assert store_url(resolve({}, {})) == ""
    classic = resolve({}, {"MONGO_DB_HOST": "db.example", "MONGO_DB_PORT": "27018"})
    assert store_url(classic) == "mongodb://db.example:27018/hks"
    assert store_url(resolve({"store": "sqlite:///x.db"}, {"MONGO_DB_HOST": "db"})) == "sqlite:///x.db"
    assert store_url(resolve({"workers": "2", "results_dir": "out"}, {})) == "sqlite:///out/store.sqlite3"
    assert resolve({}, {"EXPERIMENT_NAME": "mine"}).experiment_name == "mine"


def test_local_workers_get_the_password_through_their_environment_not_their_command_line():
    from hks.store import split_credentials

    url, env = split_credentials("postgresql://hks:p%40ss@db:5432/hks")
    assert url == "postgresql://hks@db:5432/hks"
    assert env == {"HKS_STORE_USER": "hks", "HKS_STORE_PASSWORD": "p@ss"}
    assert split_credentials("sqlite:///r/store.sqlite3") == ("sqlite:///r/store.sqlite3", {})


def test_passwords_are_masked_in_urls():
    assert mask_url("postgresql://hks:s3cret@db:5432/hks") == "postgresql://hks:***@db:5432/hks"
    assert mask_url("mongodb://u:p%40ss@h1:1,h2:2/hks?authSource=admin") == "mongodb://u:***@h1:1,h2:2/hks?authSource=admin"
    assert mask_url("postgresql://db/hks?user=a&password=zz&x=1") == "postgresql://db/hks?user=a&password=***&x=1"
    assert mask_url("sqlite:///results/store.sqlite3") == "sqlite:///results/store.sqlite3"


@pytest.mark.parametrize("url, message", [
    ("redis://localhost/0", "unsupported job store URL 'redis://localhost/0'"),
    ("results/store.sqlite3", "unsupported job store URL"),
    ("postgresql://hks:s3cret@127.0.0.1:1/hks", "cannot reach the job store while connecting to postgresql://hks:***@127.0.0.1:1/hks"),
    ("mongodb://hks:s3cret@127.0.0.1:1/hks", "cannot reach the job store while connecting to mongodb://hks:***@127.0.0.1:1/hks"),
    ("mongodb://hks:s3cret@[bad/hks", "malformed job store URL"),
])
def test_bad_or_unreachable_stores_give_one_clear_line_without_the_password(url, message):
    with pytest.raises(StoreError) as info:
        open_store(url, timeout=0.5)
    text = str(info.value)
    assert message in text and "s3cret" not in text and "\n" not in text


def test_a_wrong_password_on_the_real_postgresql_server_is_reported_masked():
    from store_fixtures import postgres_url

    url = postgres_url()
    wrong = url.replace("://hks:", "://hks:WRONGpw", 1)
    with pytest.raises(StoreError, match="password authentication failed") as info:
        open_store(wrong)
    assert "WRONGpw" not in str(info.value)


def test_bad_distributed_settings_are_refused_before_anything_starts(tmp_path):
    from hks.store import check_settings

    for changes, flag in [({"lease_seconds": 0.0}, "--lease-seconds"), ({"max_attempts": 0}, "--max-attempts"),
                          ({"workers": -1}, "--workers"), ({"objective": "run_trial"}, "--objective")]:
        with pytest.raises(ConfigError, match=flag):
            check_settings(Settings(**changes))


def test_local_workers_share_the_cores_and_get_every_setting_explicitly(monkeypatch):
    settings = Settings(experiment_name="e", space="s", objective="m:f", data_dir="d", results_dir="r",
                        download=False, gpu="0")
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert [threads_per_worker(settings, n) for n in (1, 2, 3, 16)] == [8, 4, 2, 1]
    assert threads_per_worker(settings.replace(threads=3), 2) == 3
    command = worker_command(settings, "sqlite:///r/store.sqlite3", 1)
    joined = " ".join(command)
    for part in ("-m hks.worker", "--store sqlite:///r/store.sqlite3", "--experiment-name e", "--space s",
                 "--objective m:f", "--threads 1", "--data-dir d", "--results-dir r", "--no-download", "--gpu 0",
                 "--store-patience 600.0"):
        assert part in joined


def test_a_worker_whose_lease_was_lost_discards_its_result_files(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HKS_TEST_TRIAL_SECONDS", "0")
    settings = _settings(tmp_path)

    def lost_meanwhile(point, settings_, **kwargs):
        result = objectives_for_tests.quadratic(point, settings_, **kwargs)
        store.requeue_expired(settings.experiment_name, 3, now=time.time() + 3600)  # as if heartbeats had stopped
        return result

    worker = _worker(store, settings, lost_meanwhile)
    _one_job(store, settings)
    worker.run_job(store.reserve(settings.experiment_name, worker.worker_id, 5))
    job = store.load(settings.experiment_name)[0]
    assert (job.state, job.result, worker.trials_run) == (p.NEW, None, 0)
    assert list((tmp_path / "results").glob("*.txt.json")) == []


def test_credentials_can_come_from_the_environment_instead_of_the_url(monkeypatch):
    from store_fixtures import postgres_url

    url = postgres_url()
    user, password = url.split("://", 1)[1].split("@", 1)[0].split(":", 1)
    bare = url.replace(f":{password}@", "@", 1)
    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(StoreError):
        open_store(bare)
    monkeypatch.setenv("HKS_STORE_USER", user)
    monkeypatch.setenv("HKS_STORE_PASSWORD", password)
    with open_store(bare) as store:
        assert store.url == bare and store.count("nothing") == 0


@pytest.mark.parametrize("password", ["s3cret", "pa/ss@w:rd"])
def test_the_experiment_record_never_holds_the_store_password(store, tmp_path, password):
    settings = _settings(tmp_path, store=f"postgresql://hks:{password}@db/hks")
    experiment = register_experiment(store, settings, objectives_for_tests.SPACE)
    saved = store.get_experiment(experiment.exp_key)
    assert saved.settings["store"] == "postgresql://hks:***@db/hks"
    assert password not in repr(saved)


def test_a_store_outage_is_retried_then_reported_in_one_line(monkeypatch, capsys):
    import sqlalchemy as sa

    from hks.store.retry import retrying

    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
        return "reserved"

    assert retrying(flaky, "reserving a trial") == "reserved" and len(calls) == 3
    out = capsys.readouterr().out.splitlines()  # said once when it started, once when it ended: not per retry
    assert len(out) == 2 and "unreachable while reserving a trial" in out[0] and "is back" in out[1], out

    def down():
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused\nmore detail"))

    with pytest.raises(StoreError, match="cannot reach the job store while reserving a trial: Operational") as info:
        retrying(down, "reserving a trial", patience=0)
    assert "\n" not in str(info.value)
    with pytest.raises(ZeroDivisionError):  # a bug is not an outage: never retried
        retrying(lambda: 1 / 0, "reserving a trial")
    calls.clear()

    def duplicate():
        calls.append(1)
        raise sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key value violates unique constraint"))

    with pytest.raises(StoreError, match="refused inserting trials: IntegrityError.*not a connection problem"):
        retrying(duplicate, "inserting trials")  # a constraint violated is not an outage: one try, one line
    assert len(calls) == 1


def test_local_workers_import_what_their_master_imported(monkeypatch, tmp_path):
    from pathlib import Path

    import hks
    from hks.local_workers import worker_env

    monkeypatch.syspath_prepend(str(tmp_path))  # say, the folder of the user's script and objective module
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = worker_env({"HKS_STORE_PASSWORD": "pw"})
    path = env["PYTHONPATH"].split(os.pathsep)
    assert path[0] == str(tmp_path) and str(Path(hks.__file__).resolve().parents[1]) in path
    assert path[-1] == "/elsewhere" and env["HKS_STORE_PASSWORD"] == "pw" and env["HKS_WORKERS"] == "0"
