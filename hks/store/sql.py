"""The job store in SQL through SQLAlchemy 2 Core: an SQLite file (several processes on one
machine) or PostgreSQL (many machines).

Reservation is one ``UPDATE ... WHERE tid = (oldest new job) AND state = 'new' RETURNING``
statement. PostgreSQL adds ``FOR UPDATE SKIP LOCKED`` to the inner select so concurrent
workers take different rows instead of queueing on the same one; SQLite runs every writing
transaction as ``BEGIN IMMEDIATE`` (one writer at a time, waiting up to the busy timeout) and
every reading one as a plain deferred ``BEGIN``, in WAL mode, so readers never block the writer.
JSON fields are stored as text. Columns added since a table was created are added on open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from hks.results import to_jsonable
from hks.store import protocol as p

SQLITE_BUSY_SECONDS = 60
_WRITE = "hks_write"  # execution option: this transaction writes (SQLite takes the write lock up front)
CONNECT_TIMEOUT_SECONDS = 10
CHUNK = 500

metadata = sa.MetaData()

experiments = sa.Table(
    "hks_experiments", metadata,
    sa.Column("exp_key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("space", sa.Text, nullable=False),
    sa.Column("objective", sa.Text, nullable=False),
    sa.Column("settings", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
)

jobs = sa.Table(
    "hks_jobs", metadata,
    sa.Column("exp_key", sa.String(200), primary_key=True),
    sa.Column("tid", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("doc", sa.Text, nullable=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("reservation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.Integer, nullable=False, default=0),
    sa.Column("lease_expires", sa.Float),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("book_time", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("metrics", sa.Text, nullable=False, default="[]"),
    sa.Column("error", sa.Text),
    sa.Index("hks_jobs_queue", "exp_key", "state", "tid"),
)

workers = sa.Table(
    "hks_workers", metadata,
    sa.Column("worker_id", sa.String(200), primary_key=True),
    sa.Column("exp_key", sa.String(200), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("tid", sa.Integer),
    sa.Column("last_seen", sa.Float, nullable=False),
)

_JSON_FIELDS = ("doc", "result", "metrics")


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(to_jsonable(value), allow_nan=False)


def _job_values(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: (_dumps(v) if k in _JSON_FIELDS else v) for k, v in changes.items()}


def _job(row: Any) -> p.Job:
    data = dict(row._mapping)
    for key in _JSON_FIELDS:
        data[key] = json.loads(data[key]) if data[key] is not None else None
    data["metrics"] = data["metrics"] or []
    return p.Job(**data)


def engine_url(url: str) -> str:
    """SQLAlchemy's URL: plain ``postgresql://`` means the psycopg 3 driver hks depends on."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, credentials: tuple[str, str] | None = None) -> sa.Engine:
    """An engine for the URL; ``credentials`` (user, password) fill in a URL that has no password."""
    url = engine_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    parsed = sa.engine.make_url(url)
    if credentials:
        parsed = parsed.set(username=credentials[0] or parsed.username, password=credentials[1])
    return sa.create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})


def _sqlite_engine(url: str) -> sa.Engine:
    database = sa.engine.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITE)
                                   else "BEGIN")

    return engine


class SqlStore(p.JobStore):
    """A :class:`~hks.store.protocol.JobStore` over one SQLAlchemy engine (thread-safe)."""

    def __init__(self, engine: sa.Engine, url: str):
        self.engine = engine
        self.writer = engine.execution_options(**{_WRITE: True})
        self.url = url
        self.postgres = engine.dialect.name == "postgresql"
        self._create_tables()

    def _create_tables(self) -> None:
        try:
            metadata.create_all(self.writer, checkfirst=True)
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError) as exc:
            if "already exists" not in str(exc) and not isinstance(exc, sa.exc.IntegrityError):
                raise
            metadata.create_all(self.writer, checkfirst=True)  # another process created them at the same moment
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Tables made by an older hks lack newer columns: add them (each has a default or is nullable)."""
        inspector = sa.inspect(self.engine)
        for table in metadata.sorted_tables:
            present = {column["name"] for column in inspector.get_columns(table.name)}
            for column in (c for c in table.columns if c.name not in present):
                kind = column.type.compile(self.engine.dialect)
                default = column.server_default
                default = f" NOT NULL DEFAULT '{default.arg}'" if default is not None else ""
                try:
                    with self.writer.begin() as conn:
                        conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{default}")
                except (sa.exc.ProgrammingError, sa.exc.OperationalError) as exc:
                    if "duplicate column" not in str(exc).lower() and "already exists" not in str(exc):
                        raise  # else another process added it at the same moment

    def close(self) -> None:
        self.engine.dispose()

    # --- experiments -------------------------------------------------------------------
    def get_experiment(self, exp_key: str) -> p.Experiment | None:
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(experiments).where(experiments.c.exp_key == exp_key)).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data["settings"] = json.loads(data["settings"])
        return p.Experiment(**data)

    def experiment_keys(self) -> list[str]:
        with self.engine.begin() as conn:
            return list(conn.execute(sa.select(experiments.c.exp_key).order_by(experiments.c.created_at)).scalars())

    def put_experiment(self, experiment: p.Experiment) -> None:
        values = {**experiment.__dict__, "settings": _dumps(experiment.settings)}
        with self.writer.begin() as conn:
            updated = conn.execute(sa.update(experiments).where(experiments.c.exp_key == experiment.exp_key)
                                   .values({k: v for k, v in values.items() if k != "created_at"}))
            if updated.rowcount == 0:
                conn.execute(sa.insert(experiments).values(values))

    def finish_experiment(self, exp_key: str, now: float | None = None) -> None:
        with self.writer.begin() as conn:
            conn.execute(sa.update(experiments).where(experiments.c.exp_key == exp_key)
                         .values(finished_at=time.time() if now is None else now))

    # --- the master's side -------------------------------------------------------------
    def insert_jobs(self, new_jobs: list[p.Job]) -> None:
        if not new_jobs:
            return
        rows = [_job_values({**job.__dict__}) for job in new_jobs]
        with self.writer.begin() as conn:
            conn.execute(sa.insert(jobs), rows)

    def versions(self, exp_key: str, watch: p.Watch | None = None) -> dict[int, int]:
        query = sa.select(jobs.c.tid, jobs.c.version).where(jobs.c.exp_key == exp_key)
        if watch is not None:
            query = query.where(sa.or_(jobs.c.tid.in_(list(watch.tids)), jobs.c.state.in_([p.NEW, p.RUNNING]),
                                       jobs.c.tid > watch.after))
        with self.engine.begin() as conn:
            return {tid: version for tid, version in conn.execute(query)}

    def load(self, exp_key: str, tids: list[int] | None = None) -> list[p.Job]:
        query = sa.select(jobs).where(jobs.c.exp_key == exp_key).order_by(jobs.c.tid)
        with self.engine.begin() as conn:
            if tids is None:
                return [_job(row) for row in conn.execute(query)]
            out = []
            for chunk in _chunks(sorted(tids)):
                out.extend(_job(row) for row in conn.execute(query.where(jobs.c.tid.in_(chunk))))
            return out

    def count(self, exp_key: str, states: tuple[str, ...] = p.STATES) -> int:
        query = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.exp_key == exp_key,
                                                                  jobs.c.state.in_(states))
        with self.engine.begin() as conn:
            return int(conn.execute(query).scalar_one())

    # --- the workers' side -------------------------------------------------------------
    def reserve(self, exp_key: str, owner: str, lease_seconds: float) -> p.Job | None:
        now = time.time()
        oldest = (sa.select(jobs.c.tid).where(jobs.c.exp_key == exp_key, jobs.c.state == p.NEW)
                  .order_by(jobs.c.tid).limit(1))
        if self.postgres:
            oldest = oldest.with_for_update(skip_locked=True)
        stmt = (sa.update(jobs)
                .where(jobs.c.exp_key == exp_key, jobs.c.tid == oldest.scalar_subquery(), jobs.c.state == p.NEW)
                .values(state=p.RUNNING, owner=owner, attempts=jobs.c.attempts + 1, version=jobs.c.version + 1,
                        reservation=jobs.c.reservation + 1,
                        lease_expires=now + lease_seconds, heartbeat_at=now, book_time=now)
                .returning(*jobs.c))
        with self.writer.begin() as conn:
            row = conn.execute(stmt).first()
        return _job(row) if row is not None else None

    def _fenced(self, job: p.Job, changes: dict[str, Any], *, bump: bool = False) -> bool:
        values = _job_values(changes)
        if bump:
            values["version"] = jobs.c.version + 1
        stmt = (sa.update(jobs)
                .where(jobs.c.exp_key == job.exp_key, jobs.c.tid == job.tid, jobs.c.state == p.RUNNING,
                       jobs.c.owner == job.owner, jobs.c.reservation == job.reservation)
                .values(values))
        with self.writer.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def heartbeat(self, job: p.Job, lease_seconds: float) -> bool:
        now = time.time()
        return self._fenced(job, {"lease_expires": now + lease_seconds, "heartbeat_at": now})

    def push_metrics(self, job: p.Job, metrics: list[dict[str, Any]]) -> bool:
        return self._fenced(job, {"metrics": metrics})

    def complete(self, job: p.Job, result: dict[str, Any]) -> bool:
        return self._fenced(job, {"state": p.DONE, "result": result, "finished_at": time.time(),
                                  "lease_expires": None}, bump=True)

    def release(self, job: p.Job) -> bool:
        changes = {**p.release_changes(), "attempts": jobs.c.attempts - 1}
        return self._fenced(job, changes, bump=True)

    def reopen(self, job: p.Job) -> bool:
        stmt = (sa.update(jobs)
                .where(jobs.c.exp_key == job.exp_key, jobs.c.tid == job.tid, jobs.c.state == p.DONE,
                       jobs.c.version == job.version)
                .values({**_job_values(p.reopen_changes(job)), "version": jobs.c.version + 1}))
        with self.writer.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def requeue_expired(self, exp_key: str, max_attempts: int, now: float | None = None) -> list[p.Job]:
        now = time.time() if now is None else now
        expired = (sa.select(jobs).where(jobs.c.exp_key == exp_key, jobs.c.state == p.RUNNING,
                                         jobs.c.lease_expires < now))
        changed = []
        with self.writer.begin() as conn:
            for job in [_job(row) for row in conn.execute(expired)]:
                changes = p.expiry_changes(job, now, max_attempts)
                stmt = (sa.update(jobs)
                        .where(jobs.c.exp_key == exp_key, jobs.c.tid == job.tid, jobs.c.state == p.RUNNING,
                               jobs.c.owner == job.owner, jobs.c.reservation == job.reservation,
                               jobs.c.lease_expires < now)
                        .values({**_job_values(changes), "version": jobs.c.version + 1}))
                if conn.execute(stmt).rowcount == 1:
                    changed.append(job)
        return changed

    # --- worker presence ---------------------------------------------------------------
    def touch_worker(self, info: p.WorkerInfo) -> None:
        values = dict(info.__dict__)
        with self.writer.begin() as conn:
            updated = conn.execute(sa.update(workers).where(workers.c.worker_id == info.worker_id).values(values))
            if updated.rowcount == 0:
                conn.execute(sa.insert(workers).values(values))

    def remove_worker(self, worker_id: str) -> None:
        with self.writer.begin() as conn:
            conn.execute(sa.delete(workers).where(workers.c.worker_id == worker_id))

    def live_workers(self, exp_key: str, since: float) -> list[p.WorkerInfo]:
        query = sa.select(workers).where(workers.c.exp_key == exp_key, workers.c.last_seen >= since)
        with self.engine.begin() as conn:
            return [p.WorkerInfo(**dict(row._mapping)) for row in conn.execute(query)]

    def delete_experiment(self, exp_key: str) -> None:
        with self.writer.begin() as conn:
            for table in (jobs, workers, experiments):
                conn.execute(sa.delete(table).where(table.c.exp_key == exp_key))


def _chunks(items: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]
