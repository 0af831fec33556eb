"""Job stores for the tests: SQLite files, the real PostgreSQL server that .ci/postgres.sh
starts (HKS_TEST_POSTGRES_URL), and MongoDB through mongomock."""

from __future__ import annotations

import os
import uuid

from needs import require, unavailable

POSTGRES_ENV = "HKS_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """The test server's URL; skips outside CI when unset, fails in CI (a missing server is a bug there)."""
    url = os.environ.get(POSTGRES_ENV, "")
    if not url:
        unavailable(f"{POSTGRES_ENV} is unset: run 'source .ci/postgres.sh' first to start a PostgreSQL server")
    return url


def unique_exp_key(prefix: str = "test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def make_store(kind: str, tmp_path):
    """A fresh store of one kind; the caller closes it."""
    if kind == "sqlite":
        from hks.store import open_store

        return open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    if kind == "postgresql":
        from hks.store import open_store

        return open_store(postgres_url())
    if kind == "mongomock":
        mongomock = require("mongomock")
        from hks.store.mongo import MongoStore

        return MongoStore(mongomock.MongoClient(), "hks", "mongodb://mock/hks")
    raise ValueError(kind)
