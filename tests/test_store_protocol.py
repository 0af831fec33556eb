"""The job-store protocol, run against every driver: SQLite, real PostgreSQL, MongoDB (mongomock)."""

from __future__ import annotations

import math
import threading
import time

import pytest
from store_fixtures import make_store, unique_exp_key

from hks.store import protocol as p

DRIVERS = ["sqlite", "postgresql", "mongomock"]


@pytest.fixture(params=DRIVERS)
def store(request, tmp_path):
    store = make_store(request.param, tmp_path)
    store.kind = request.param
    yield store
    store.close()


@pytest.fixture
def exp_key(store):
    key = unique_exp_key()
    yield key
    store.delete_experiment(key)


def _jobs(exp_key: str, tids) -> list[p.Job]:
    return [p.Job(exp_key=exp_key, tid=tid, doc={"misc": {"tid": tid, "vals": {"x": [tid / 10], "c": []}}})
            for tid in tids]


def test_experiment_record_round_trips_and_a_restart_updates_its_settings(store, exp_key):
    assert store.get_experiment(exp_key) is None
    store.put_experiment(p.Experiment(exp_key, "abc123", "hks.space", "hks.objective:run_trial",
                                      {"epochs": 3}, created_at=100.0))
    store.put_experiment(p.Experiment(exp_key, "abc123", "hks.space", "hks.objective:run_trial",
                                      {"epochs": 5}, created_at=200.0))
    got = store.get_experiment(exp_key)
    assert (got.fingerprint, got.space, got.objective, got.settings) == ("abc123", "hks.space",
                                                                        "hks.objective:run_trial", {"epochs": 5})
    assert got.created_at == 100.0


def test_experiment_keys_name_every_experiment_oldest_first(store, exp_key):
    newer = unique_exp_key()
    future = time.time() + 1e6  # newer than whatever other tests left in the shared server
    try:
        for key, created in ((newer, future + 1), (exp_key, future)):
            store.put_experiment(p.Experiment(key, "abc123", "hks.space", "hks.objective:run_trial", {},
                                              created_at=created))
        assert store.experiment_keys()[-2:] == [exp_key, newer]
    finally:
        store.delete_experiment(newer)
    assert newer not in store.experiment_keys()


def test_reserve_takes_the_oldest_new_job_once_and_only_of_its_experiment(store, exp_key):
    other = unique_exp_key()
    try:
        store.insert_jobs(_jobs(other, [0]))
        store.insert_jobs(_jobs(exp_key, [2, 0, 1]))
        first = store.reserve(exp_key, "w1", lease_seconds=30)
        assert (first.tid, first.state, first.owner, first.attempts) == (0, p.RUNNING, "w1", 1)
        assert first.lease_expires == pytest.approx(time.time() + 30, abs=5)
        assert first.vals() == {"x": 0.0}
        assert [store.reserve(exp_key, "w2", 30).tid for _ in range(2)] == [1, 2]
        assert store.reserve(exp_key, "w2", 30) is None
        assert store.count(exp_key, (p.RUNNING,)) == 3
        assert store.count(other, (p.NEW,)) == 1
    finally:
        store.delete_experiment(other)


def test_concurrent_reservations_never_hand_out_a_job_twice(store, exp_key):
    if store.kind == "mongomock":
        pytest.skip("mongomock is single-process and not thread-safe; MongoDB's find_one_and_update is atomic")
    store.insert_jobs(_jobs(exp_key, range(40)))
    taken: dict[str, list[int]] = {}

    def drain(name: str) -> None:
        mine = taken.setdefault(name, [])
        while (job := store.reserve(exp_key, name, 30)) is not None:
            mine.append(job.tid)

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    all_taken = sorted(t for tids in taken.values() for t in tids)
    assert all_taken == list(range(40))
    owners = {job.tid: job.owner for job in store.load(exp_key)}
    assert all(owners[tid] == name for name, tids in taken.items() for tid in tids)


def test_complete_stores_the_result_and_bumps_the_version(store, exp_key):
    store.insert_jobs(_jobs(exp_key, [0]))
    before = store.versions(exp_key)[0]
    job = store.reserve(exp_key, "w1", 30)
    assert store.push_metrics(job, [{"epoch": 0, "val_fine_accuracy": 0.1}, {"epoch": 1, "loss": math.nan}])
    assert store.complete(job, {"status": "ok", "loss": -0.5, "history": {"loss": [1.0, math.inf]}})
    done = store.load(exp_key, [0])[0]
    assert done.state == p.DONE and done.finished_at is not None
    assert done.result == {"status": "ok", "loss": -0.5, "history": {"loss": [1.0, None]}}
    assert done.metrics == [{"epoch": 0, "val_fine_accuracy": 0.1}, {"epoch": 1, "loss": None}]
    assert store.versions(exp_key)[0] == before + 2  # reserved, completed
    assert store.count(exp_key, p.FINAL_STATES) == 1


def test_heartbeat_extends_the_lease(store, exp_key):
    store.insert_jobs(_jobs(exp_key, [0]))
    job = store.reserve(exp_key, "w1", lease_seconds=1)
    assert store.heartbeat(job, lease_seconds=100)
    assert store.requeue_expired(exp_key, max_attempts=3, now=time.time() + 50) == []
    assert store.load(exp_key)[0].state == p.RUNNING


def test_an_expired_lease_requeues_then_fails_after_max_attempts(store, exp_key):
    store.insert_jobs(_jobs(exp_key, [0]))
    for attempt in (1, 2):
        job = store.reserve(exp_key, f"w{attempt}", lease_seconds=5)
        assert job.attempts == attempt
        assert store.requeue_expired(exp_key, 3, now=time.time() + 1) == []  # lease still valid
        requeued = store.requeue_expired(exp_key, 3, now=time.time() + 10)
        assert [j.tid for j in requeued] == [0]
        back = store.load(exp_key)[0]
        assert (back.state, back.owner, back.attempts) == (p.NEW, None, attempt)
        assert f"worker w{attempt} stopped sending heartbeats" in back.error
        # The lost worker comes back: it can no longer write to the trial.
        assert not store.heartbeat(job, 30)
        assert not store.complete(job, {"status": "ok", "loss": 1.0})
    job = store.reserve(exp_key, "w3", lease_seconds=5)
    assert [j.tid for j in store.requeue_expired(exp_key, 3, now=time.time() + 10)] == [0]
    failed = store.load(exp_key)[0]
    assert failed.state == p.FAILED and failed.attempts == 3
    assert failed.result["status"] == "fail" and failed.result["error_type"] == p.WORKER_LOST
    assert "gave up after 3 attempts" in failed.error
    assert store.reserve(exp_key, "w4", 5) is None


def test_release_requeues_at_once_without_spending_an_attempt(store, exp_key):
    store.insert_jobs(_jobs(exp_key, [0]))
    job = store.reserve(exp_key, "w1", 30)
    assert store.release(job)
    back = store.load(exp_key)[0]
    assert (back.state, back.owner, back.attempts) == (p.NEW, None, 0)
    again = store.reserve(exp_key, "w2", 30)
    assert (again.owner, again.attempts, again.metrics) == ("w2", 1, [])
    assert not store.release(job)  # the old reservation is stale


def test_load_by_tids_and_versions_show_only_what_changed(store, exp_key):
    store.insert_jobs(_jobs(exp_key, range(5)))
    first = store.versions(exp_key)
    store.reserve(exp_key, "w1", 30)
    second = store.versions(exp_key)
    assert [tid for tid in second if second[tid] != first[tid]] == [0]
    assert [j.tid for j in store.load(exp_key, [3, 1])] == [1, 3]
    assert store.count(exp_key) == 5


def test_live_workers_are_those_seen_recently(store, exp_key):
    now = time.time()
    store.touch_worker(p.WorkerInfo("host:1", exp_key, "idle", None, now - 100))
    store.touch_worker(p.WorkerInfo("host:2", exp_key, "idle", None, now))
    store.touch_worker(p.WorkerInfo("host:2", exp_key, "busy", 4, now + 1))
    live = store.live_workers(exp_key, since=now - 10)
    assert [(w.worker_id, w.state, w.tid) for w in live] == [("host:2", "busy", 4)]
    store.remove_worker("host:2")
    assert store.live_workers(exp_key, since=0) == [p.WorkerInfo("host:1", exp_key, "idle", None, now - 100)]
