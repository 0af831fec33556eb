"""Job stores for the tests: SQLite files, the real PostgreSQL server that .ci/postgres.sh
starts (HKS_TEST_POSTGRES_URL), and MongoDB through mongomock."""

from __future__ import annotations

import os
import socket
import threading
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


class LateServer:
    """A TCP port that refuses connections (a database not up yet) until :meth:`open` forwards it to
    the real server at ``target`` ("host:port"), as a database container that starts after its clients."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()  # nothing listens here until open()
        self._listener: socket.socket | None = None

    def open(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.target)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()


def _pipe(source, sink) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(2)
            except OSError:
                pass
