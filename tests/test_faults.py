"""Faults, secrets and stops, on SQLite and the real PostgreSQL server: the fencing token, finished
experiments, the objective's code check, outages versus bugs, credentials in every URL form,
stopping on signals within a bounded time, lost leases, time limits and orphaned workers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import objectives_for_tests
import pytest
from distributed_helpers import OBJECTIVE, REPO, SPACE, env, wait_until
from store_fixtures import make_store, postgres_url, unique_exp_key

from hks.config import Settings
from hks.errors import StoreError, WorkerError
from hks.objective import save_result
from hks.stopping import Stopped, Stopper
from hks.store import mask_url, open_store, split_credentials
from hks.store import protocol as p
from hks.store.retry import is_outage, retrying
from hks.store.urls import PASSWORD_FILE_ENV, parse, scrub
from hks.worker import Worker, check_experiment

SECRET = "pa/ss@w:rd%41&?x"  # every URL-special character
RAW_SECRET = "pa/ss@w:rd"  # what may stand unencoded in a URL ('?' and '%XX' must be percent-encoded there)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    store = make_store(request.param, tmp_path)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgresql", "mongomock", "results.pkl", "memory"])
def any_store(request, tmp_path):
    """For the protocol's own steps, which the thin MongoDB driver and the in-process stores implement too."""
    from hks.store.pickle_file import MemoryStore, PickleStore

    if request.param == "results.pkl":
        store = PickleStore(tmp_path / "results.pkl")
    elif request.param == "memory":
        store = MemoryStore()
    else:
        store = make_store(request.param, tmp_path)
    yield store
    store.close()


def _experiment(store, exp_key: str, **changes) -> p.Experiment:
    import objectives_for_tests as objectives

    from hks.space import fingerprint

    experiment = p.Experiment(exp_key, fingerprint(objectives.SPACE), SPACE, OBJECTIVE,
                              Settings(experiment_name=exp_key).to_dict(), **changes)
    store.put_experiment(experiment)
    return experiment


def _jobs(exp_key: str, tids) -> list[p.Job]:
    return [p.Job(exp_key, tid, doc={"misc": {"tid": tid, "vals": {"x": [0.5], "shape": [0]}}}) for tid in tids]


def _worker(store, tmp_path, objective, **settings) -> Worker:
    exp_key = unique_exp_key()
    experiment = _experiment(store, exp_key)
    merged = Settings(experiment_name=exp_key, results_dir=str(tmp_path / "results"), **settings)
    return Worker(store, experiment, merged, objectives_for_tests.SPACE, objective)


# --- the store ----------------------------------------------------------------------------------

def test_a_released_and_retaken_trial_has_a_new_fence_so_a_stale_handle_cannot_complete_it(any_store):
    store = any_store
    exp_key = unique_exp_key()
    store.insert_jobs(_jobs(exp_key, [0]))
    stale = store.reserve(exp_key, "w", 30)
    assert store.release(stale)
    again = store.reserve(exp_key, "w", 30)  # same owner, same attempt count as before the release
    assert (again.attempts, again.owner) == (stale.attempts, stale.owner)
    assert again.reservation > stale.reservation
    assert not store.heartbeat(stale, 30) and not store.complete(stale, {"status": "ok", "loss": 1.0})
    assert store.complete(again, {"status": "ok", "loss": 0.5})
    assert store.load(exp_key)[0].result["loss"] == 0.5
    store.delete_experiment(exp_key)


def test_a_paused_trial_is_reopened_once_from_the_version_read_and_then_runs_as_new(any_store):
    store = any_store
    exp_key = unique_exp_key()
    store.insert_jobs(_jobs(exp_key, [0, 1]))
    first = store.reserve(exp_key, "w", 30)
    assert store.complete(first, {"status": "pruned", "paused": True, "loss": -0.2})
    paused = store.load(exp_key, [0])[0]
    assert not store.reopen(first)  # read before it completed: stale
    assert store.reopen(paused) and not store.reopen(paused)  # once: its version moved on
    back = store.load(exp_key, [0])[0]
    assert (back.state, back.result, back.attempts, back.owner, back.metrics) == (p.NEW, None, 0, None, [])
    assert back.version > paused.version
    again = store.reserve(exp_key, "w2", 30)
    assert (again.tid, again.attempts) == (0, 1)  # the oldest new trial: it goes first
    assert not store.reopen(again)  # only done trials are reopened
    assert store.complete(again, {"status": "ok", "loss": -0.4})
    assert store.load(exp_key, [0])[0].result["loss"] == -0.4
    store.delete_experiment(exp_key)


def test_a_finished_experiment_is_marked_and_a_master_registering_it_again_reopens_it(any_store):
    store = any_store
    exp_key = unique_exp_key()
    experiment = _experiment(store, exp_key)
    assert store.get_experiment(exp_key).finished_at is None
    store.finish_experiment(exp_key, now=1234.0)
    saved = store.get_experiment(exp_key)
    assert (saved.finished_at, saved.settings) == (1234.0, experiment.settings)
    store.put_experiment(experiment)  # a (re)started master
    assert store.get_experiment(exp_key).finished_at is None
    store.delete_experiment(exp_key)


def test_a_constraint_violation_fails_at_once_in_one_line_but_a_lost_connection_is_an_outage(store):
    exp_key = unique_exp_key()
    store.insert_jobs(_jobs(exp_key, [0]))
    tries = []

    def insert_again():
        tries.append(1)
        store.insert_jobs(_jobs(exp_key, [0]))

    with pytest.raises(StoreError, match="refused inserting trials: IntegrityError") as info:
        retrying(insert_again, "inserting trials", patience=60)
    assert len(tries) == 1 and "\n" not in str(info.value)
    store.delete_experiment(exp_key)


def test_outages_are_connection_errors_only():
    import psycopg
    import pymongo.errors
    import sqlalchemy as sa

    def wrapped(orig):
        return sa.exc.OperationalError("SELECT 1", {}, orig)

    assert is_outage(wrapped(psycopg.OperationalError("connection refused")))
    assert is_outage(pymongo.errors.AutoReconnect("primary stepped down"))
    assert is_outage(pymongo.errors.ServerSelectionTimeoutError("no servers"))
    assert is_outage(wrapped(sqlite3.OperationalError("database is locked")))
    assert not is_outage(wrapped(sqlite3.OperationalError("no such table: hks_jobs")))
    assert not is_outage(sa.exc.IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not is_outage(sa.exc.ProgrammingError("SET", {}, Exception("can't change 'autocommit' now")))
    assert not is_outage(pymongo.errors.DuplicateKeyError("E11000"))


def test_tables_of_an_older_hks_get_the_new_columns(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE hks_experiments (exp_key VARCHAR(200) PRIMARY KEY, fingerprint VARCHAR(64) NOT "
                   "NULL, space TEXT NOT NULL, objective TEXT NOT NULL, settings TEXT NOT NULL, created_at FLOAT "
                   "NOT NULL)")
        db.execute("INSERT INTO hks_experiments VALUES ('old', 'f', 's', 'o', '{}', 1.0)")
    with open_store(f"sqlite:///{path}") as store:
        assert store.get_experiment("old").finished_at is None
        store.insert_jobs(_jobs("old", [0]))
        assert store.reserve("old", "w", 30).reservation == 1


def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path):
    path = tmp_path / "store.sqlite3"
    with open_store(f"sqlite:///{path}") as store:
        _experiment(store, "e")
        store.insert_jobs(_jobs("e", range(3)))
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock (e.g. mid-transaction)
        seen = []
        reader = threading.Thread(target=lambda: seen.append((store.count("e"), store.get_experiment("e").exp_key,
                                                              len(store.load("e")), len(store.versions("e")))))
        reader.start()
        reader.join(30)  # a reader taking the write lock would wait the 60 s busy timeout
        alive = reader.is_alive()
        writer.execute("ROLLBACK")
        writer.close()
        reader.join()
    assert not alive and seen == [(3, "e", 3, 3)]


# --- credentials --------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    f"postgresql://hks:{SECRET}@db:5432/hks",
    "postgresql://hks:pa%2Fss%40w%3Ard@db/hks",
    f"mongodb://hks:{SECRET}@db1,db2/hks?authSource=admin",
    f"postgresql://db/hks?user=hks&password={SECRET.replace('&', '%26')}",
    "postgresql://hks:s3cr3t@db/hks?sslmode=require&password=other",
])
def test_passwords_are_masked_in_every_url_form_and_in_driver_messages(url):
    secret = parse(url).password
    shown = mask_url(url)
    assert secret and secret not in shown and "***" in shown
    assert shown.startswith(url.split("://")[0] + "://") and "db" in shown
    message = f'connection to "{url}" failed: FATAL password authentication failed ({secret})'
    assert secret not in scrub(message)
    bare, child_env = split_credentials(url)
    assert secret not in bare and child_env["HKS_STORE_PASSWORD"] == secret


def test_a_password_with_special_characters_logs_in_to_the_real_server_from_a_file(tmp_path, monkeypatch):
    import sqlalchemy as sa

    url = postgres_url()
    from urllib.parse import quote

    role, secret = f"hks_{unique_exp_key('r')[-8:]}", SECRET
    admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN PASSWORD '{secret.replace('%', '%%')}'")
        conn.exec_driver_sql(f"GRANT ALL ON SCHEMA public TO {role}")
        conn.exec_driver_sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        conn.exec_driver_sql(f"CREATE ROLE {role}_raw LOGIN PASSWORD '{RAW_SECRET}'")
    try:
        with pytest.raises(StoreError, match="refused the user or password") as info:  # reached the server
            open_store(f"postgresql://{role}_raw:wrong{RAW_SECRET}@{url.split('@', 1)[1]}")
        assert RAW_SECRET not in str(info.value)
        rest = url.split("@", 1)[1]
        with open_store(f"postgresql://{role}:{quote(secret, safe='')}@{rest}") as store:  # encoded, in the URL
            assert quote(secret, safe="") not in store.url and store.count("none") == 0
        (tmp_path / "password").write_text(secret + "\n")
        monkeypatch.delenv("HKS_STORE_PASSWORD", raising=False)
        monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "password"))
        with open_store(f"postgresql://{role}@{rest}") as store:  # from a file: nothing on a command line
            assert store.count("none") == 0
        (tmp_path / "password").write_text("wrong")
        with pytest.raises(StoreError, match="refused the user or password") as info:
            open_store(f"postgresql://{role}@{rest}")
        assert "does not exist" not in str(info.value)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
            conn.exec_driver_sql(f"REVOKE ALL ON SCHEMA public FROM {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}_raw")
        admin.dispose()


def test_a_wrong_database_name_is_not_reported_as_a_password_failure():
    url = postgres_url()
    with pytest.raises(StoreError) as info:
        open_store(url.rsplit("/", 1)[0] + "/no_such_db")
    text = str(info.value)
    assert "database named in the URL does not exist" in text and "password" not in text.split("(")[-1]
    assert parse(url).password not in text


def test_an_unreadable_password_file_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.delenv("HKS_STORE_PASSWORD", raising=False)
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(StoreError, match=f"cannot read the store password file {PASSWORD_FILE_ENV}="):
        open_store("postgresql://hks@127.0.0.1:1/hks")


# --- the worker ---------------------------------------------------------------------------------

def _epochs(count: int, seconds: float, log: list[int], before_epoch=None):
    """An objective of ``count`` epochs of ``seconds`` each, recording the epochs it ran."""

    def objective(point, settings, *, tid=None, on_epoch=None, **_):
        for epoch in range(count):
            if before_epoch is not None:
                before_epoch(epoch)
            time.sleep(seconds)
            log.append(epoch)
            on_epoch(epoch, {"loss": 1.0, "val_fine_accuracy": 0.1})
        return {"status": "ok", "loss": 0.0, "space": point, "model_name": f"model_0.0000_{tid}"}

    return objective


def _wait_for_heartbeat_to_end(tid: int, timeout: float = 30.0) -> None:
    """Block until trial ``tid``'s heartbeat thread has returned, which it does right after flagging a lost
    lease or a passed time limit (the timeout only bounds a failing test)."""
    deadline = time.monotonic() + timeout
    while any(t.name == f"heartbeat-{tid}" for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the heartbeat never flagged the trial"
        time.sleep(0.01)


def test_a_worker_whose_lease_was_lost_stops_training_at_the_next_epoch(store, tmp_path):
    ran: list[int] = []
    worker = _worker(store, tmp_path, None, lease_seconds=0.4)

    def lose_lease(epoch: int) -> None:
        if epoch == 1:  # as if the heartbeats had stopped reaching the store: the trial is requeued
            store.requeue_expired(worker.exp_key, 3, now=time.time() + 3600)
            _wait_for_heartbeat_to_end(0)  # its next renewal finds the trial gone and flags the loss

    worker.objective = _epochs(200, 0.05, ran, lose_lease)
    store.insert_jobs(_jobs(worker.exp_key, [0]))
    worker.run_job(store.reserve(worker.exp_key, worker.worker_id, 0.4))
    job = store.load(worker.exp_key)[0]
    assert ran == [0, 1], "the training went on past the epoch during which the lease was lost"
    assert (job.state, job.result, worker.trials_run, worker.current) == (p.NEW, None, 0, None)
    assert not list((tmp_path / "results").glob("*.txt.json"))


def test_a_trial_past_its_time_limit_is_failed_once_and_its_training_stopped(store, tmp_path):
    ran: list[int] = []
    worker = _worker(store, tmp_path, None, lease_seconds=0.4, trial_time_limit=0.5)
    def pass_the_limit(epoch: int) -> None:
        if epoch == 2:
            _wait_for_heartbeat_to_end(0)  # it fails the trial once past its 0.5 s

    worker.objective = _epochs(400, 0.05, ran, pass_the_limit)
    store.insert_jobs(_jobs(worker.exp_key, [0]))
    worker.run_job(store.reserve(worker.exp_key, worker.worker_id, 0.4))
    job = store.load(worker.exp_key)[0]
    assert ran == [0, 1, 2], "the training went on past the epoch during which the time limit passed"
    assert job.state == p.DONE and job.result["error_type"] == "TrialTimeLimit" and job.result["status"] == "fail"
    files = list((tmp_path / "results").glob("*.txt.json"))
    assert len(files) == 1 and files[0].name.startswith("model_fail_")


def test_an_idle_worker_exits_when_its_experiment_is_finished(store, tmp_path, capsys):
    worker = _worker(store, tmp_path, objectives_for_tests.quadratic)
    store.finish_experiment(worker.exp_key)
    assert worker.run() == 0
    assert f"experiment {worker.exp_key!r} is finished" in capsys.readouterr().out


def test_the_result_json_is_written_only_after_the_store_accepted_the_completion(store, tmp_path):
    worker = _worker(store, tmp_path, objectives_for_tests.quadratic)
    store.insert_jobs(_jobs(worker.exp_key, [0, 1]))
    first = store.reserve(worker.exp_key, worker.worker_id, 30)
    result = {"status": "ok", "loss": 1.0, "model_name": "model_1.0000_first"}
    store.requeue_expired(worker.exp_key, 3, now=time.time() + 3600)  # lost before completing
    assert not worker.complete(first, result)
    assert not list((tmp_path / "results").glob("*.txt.json"))
    second = store.reserve(worker.exp_key, worker.worker_id, 30)
    assert worker.complete(second, {**result, "model_name": "model_1.0000_second"})
    assert [f.name for f in (tmp_path / "results").glob("*.txt.json")] == ["model_1.0000_second.txt.json"]
    path = save_result({**result, "model_name": "model_1.0000_second", "loss": 9.0}, tmp_path / "results")
    assert '"loss": 1.0' in path.read_text()  # written once: a second writer changes nothing


def test_a_worker_stopped_while_the_store_is_out_says_its_finished_trial_will_run_again(store, tmp_path, capsys,
                                                                                      monkeypatch):
    import sqlalchemy

    worker = _worker(store, tmp_path, objectives_for_tests.quadratic)
    worker.stopper = Stopper(deadline=0)  # no forced exit: it would end the test run itself
    store.insert_jobs(_jobs(worker.exp_key, [0]))
    job = store.reserve(worker.exp_key, worker.worker_id, 30)

    def server_gone(*_):
        worker.stopper.request()  # SIGTERM arrives while the completion waits for the server
        raise sqlalchemy.exc.OperationalError("UPDATE jobs", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(store, "complete", server_gone)
    with pytest.raises(Stopped):
        worker.complete(job, {"status": "ok", "loss": 1.0, "model_name": "model_1.0000_x"})
    assert "trial 1: stopped before its result could be written (the store is unreachable); it runs " \
           "again once its lease expires" in capsys.readouterr().out
    assert not list((tmp_path / "results").glob("*.txt.json"))  # no JSON without the store's record: no duplicate


def test_a_worker_with_the_objectives_name_but_other_code_is_refused(tmp_path):
    from hks.experiment import IDENTITY_KEY, code_fingerprint
    from hks.space import fingerprint

    mine = code_fingerprint(objectives_for_tests.quadratic)
    assert mine != code_fingerprint(objectives_for_tests.missing_data)  # each function's own code

    def experiment(code: str) -> p.Experiment:
        return p.Experiment("e", fingerprint(objectives_for_tests.SPACE), SPACE, OBJECTIVE,
                            {IDENTITY_KEY: {"objective_fingerprint": code}})

    check_experiment(experiment(mine), SPACE, OBJECTIVE)
    with pytest.raises(WorkerError, match="has other code") as info:
        check_experiment(experiment("0123456789abcdef"), SPACE, OBJECTIVE)
    assert "\n" not in str(info.value)


# --- stopping -----------------------------------------------------------------------------------

def _python(code: str, log: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env(**extra),
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def test_a_signal_during_a_store_call_waits_for_it_then_stops_and_a_stuck_worker_is_ended_by_the_deadline(
        tmp_path):
    code = """
        import os, signal, sys, time
        from hks.stopping import Stopped, Stopper
        stopper = Stopper(deadline=2)
        stopper.install()
        stopper.on_deadline = lambda: print("released by the deadline", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # lands "inside a store call": nothing is raised there
        print("the store call finished", flush=True)
        try:
            stopper.check()
        except Stopped as exc:
            print("stopped at the safe point", exc.exit_code, flush=True)
        time.sleep(600)  # stuck: only the deadline ends this
    """
    proc = _python(code, tmp_path / "log")
    assert proc.wait(120) == 128 + signal.SIGTERM
    lines = (tmp_path / "log").read_text().splitlines()
    assert lines[:2] == ["the store call finished", "stopped at the safe point 143"], lines
    assert "released by the deadline" in lines


def test_a_signal_inside_the_objective_stops_it_at_once():
    from hks.stopping import Stopped, Stopper

    stopper = Stopper(deadline=0)  # no deadline: it would end this test process
    previous = signal.getsignal(signal.SIGINT)
    try:
        stopper.install()
        with pytest.raises(Stopped) as info, stopper.interrupting():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(30)
        assert info.value.exit_code == 130
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def test_local_workers_exit_when_their_master_is_killed(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    code = f"""
        import time
        import tests.objectives_for_tests as objectives
        from hks.config import Settings
        from hks.experiment import register
        from hks.local_workers import LocalWorkers
        from hks.store import open_store
        settings = Settings(experiment_name="orphans", space="{SPACE}", objective="{OBJECTIVE}",
                            results_dir="{tmp_path / 'results'}", threads=1)
        with open_store("{url}") as store:
            register(store, settings, objectives.SPACE, objectives.quadratic)
        workers = LocalWorkers(settings, "{url}", 2)
        workers.start()
        print("pids", *(w.pid for w in workers.processes), flush=True)
        time.sleep(600)
    """
    master = _python(code, tmp_path / "master.log")
    def pids() -> list[int]:
        lines = [line for line in (tmp_path / "master.log").read_text().splitlines() if line.startswith("pids ")]
        return [int(pid) for pid in lines[0].split()[1:]] if lines else []

    wait_until(lambda: pids(), 60, "the master to start its workers")
    wait_until(lambda: all("serving experiment" in (tmp_path / "results" / "workers" / f"worker-{i}.log")
                           .read_text() for i in range(2)), 120, "both workers to serve")
    master.kill()
    master.wait()
    wait_until(lambda: not any(_alive(pid) for pid in pids()), 60, "the orphaned workers to exit")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state


def test_sigterm_at_random_moments_of_busy_workers_always_releases_and_exits(tmp_path):
    """Workers whose trials take no time spend most of it in database calls: a SIGTERM at any moment
    must end each one promptly with 143 (not by the deadline's force), with no trial left running."""
    import random

    from distributed_helpers import Proc, worker_args

    url = postgres_url()
    exp_key = unique_exp_key("sigterm")
    with open_store(url) as store:
        _experiment(store, exp_key)
        store.insert_jobs(_jobs(exp_key, range(2000)))
        workers = [Proc(worker_args(url, exp_key, tmp_path / "results"), tmp_path / f"w{i}.log",
                        HKS_TEST_TRIAL_SECONDS="0") for i in range(4)]
        try:
            wait_until(lambda: all("trial" in w.text() for w in workers), 120, "every worker to run trials",
                       tuple(workers))
            rng = random.Random(0)
            for worker in workers:
                time.sleep(rng.uniform(0.0, 0.3))
                worker.signal(signal.SIGTERM)
            codes = [worker.wait(60) for worker in workers]
            texts = [worker.text() for worker in workers]
            running = store.count(exp_key, (p.RUNNING,))
        finally:
            for worker in workers:
                worker.close()
            store.delete_experiment(exp_key)
    assert codes == [143] * len(workers), texts
    assert not any("not stopped" in text or "Traceback" in text for text in texts), texts
    assert running == 0
