"""Job stores for distributed searches, named by URL.

``sqlite:///results/store.sqlite3`` (several processes on one machine, no server),
``postgresql://USER:PASSWORD@HOST:PORT/DB`` (many machines) and ``mongodb://USER:PASSWORD@HOST:PORT/DB``
(the classic ``MONGO_DB_HOST`` / ``MONGO_DB_PORT`` setup). Every message shows the URL with its
password masked, so credentials never reach a terminal or a log.
"""

from __future__ import annotations

from pathlib import Path

from hks.config import Settings
from hks.errors import ConfigError, StoreError
from hks.store.protocol import JobStore
from hks.store.retry import describe, is_outage, is_store_error, retrying
from hks.store.urls import (
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    USER_ENV,
    credentials,
    env_credentials,
    is_store_url,
    mask_url,
    scrub,
    split_credentials,
)

__all__ = ["JobStore", "USER_ENV", "PASSWORD_ENV", "PASSWORD_FILE_ENV", "check_settings", "describe",
           "env_credentials", "is_outage", "is_store_error", "is_store_url", "local_store_url", "mask_url",
           "open_store", "retrying", "split_credentials", "store_url"]

MONGO_DB_NAME = "hks"
LOCAL_STORE_FILE = "store.sqlite3"
CONNECT_TIMEOUT_SECONDS = 10
_USAGE = ("use sqlite:///PATH, postgresql://USER:PASSWORD@HOST:PORT/DB or mongodb://USER:PASSWORD@HOST:PORT/DB "
          f"(or leave the password out of the URL and set {PASSWORD_ENV} or {PASSWORD_FILE_ENV})")
# PostgreSQL SQLSTATEs of a refused login and of a database that does not exist.
_PG_AUTH_STATES, _PG_NO_DATABASE = ("28P01", "28000"), "3D000"


def store_url(settings: Settings) -> str:
    """The store a search or worker uses: ``--store``, else ``MONGO_DB_HOST``, else a local SQLite
    file when ``--workers`` asks for local workers, else "" (trials run in-process)."""
    if settings.store:
        return settings.store
    if settings.mongo_db_host:
        return f"mongodb://{settings.mongo_db_host}:{settings.mongo_db_port}/{MONGO_DB_NAME}"
    from hks.gpus import worker_count

    if worker_count(settings) > 0:
        return local_store_url(settings.results_dir)
    return ""


def local_store_url(results_dir: str) -> str:
    return f"sqlite:///{Path(results_dir) / LOCAL_STORE_FILE}"


def check_settings(settings: Settings) -> None:
    """The distributed settings must make sense before anything is started."""
    if settings.lease_seconds <= 0:
        raise ConfigError(f"--lease-seconds must be > 0, got {settings.lease_seconds}")
    if settings.max_attempts < 1:
        raise ConfigError(f"--max-attempts must be >= 1, got {settings.max_attempts}")
    from hks.gpus import worker_count

    worker_count(settings)  # a bad --workers says so here
    for name in ("queue_len", "idle_timeout", "store_patience", "trial_time_limit"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(settings, name)}")
    if ":" not in settings.objective:
        raise ConfigError(f"--objective={settings.objective!r} must be module:function, "
                          "e.g. hks.objective:run_trial")


def open_store(url: str, *, timeout: float = CONNECT_TIMEOUT_SECONDS, patience: float = 0.0) -> JobStore:
    """Connect to the store a URL names (creating its tables/indexes), or raise a one-line StoreError.

    An unreachable server is waited for up to ``patience`` seconds (a worker started before its
    database); a refused login, a missing database or a malformed URL fail at once."""
    shown = mask_url(url)
    return retrying(lambda: _open(url, shown, timeout), f"connecting to {shown}", patience)


def _open(url: str, shown: str, timeout: float) -> JobStore:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    try:
        if scheme == "sqlite" or scheme.startswith(("sqlite+", "postgresql", "postgres")):
            return _open_sql(url, shown)
        if scheme in ("mongodb", "mongodb+srv"):
            return _open_mongo(url, shown, timeout)
    except StoreError:
        raise
    except Exception as exc:
        if is_store_error(exc) and is_outage(exc):
            raise
        raise StoreError(f"cannot open the job store {shown}: {describe(exc)} ({_hint(exc)})") from None
    raise StoreError(f"unsupported job store URL {shown!r}: {_USAGE}")


def _hint(exc: BaseException) -> str:
    """What to check, from the error's kind: a refused login is not a missing database."""
    original = getattr(exc, "orig", exc)
    state = getattr(original, "sqlstate", None) or ""
    text = str(exc).lower()
    if state == _PG_NO_DATABASE or "does not exist" in text:
        return "the database named in the URL does not exist: create it, or fix the URL's /DB part"
    if state in _PG_AUTH_STATES or "authentication failed" in text or "auth failed" in text:
        return f"the server refused the user or password: check them (URL, {PASSWORD_ENV} or {PASSWORD_FILE_ENV})"
    return "is the URL right and the server reachable?"


def _open_sql(url: str, shown: str) -> JobStore:
    import sqlalchemy as sa

    from hks.store.sql import SqlStore, make_engine

    parsed, login = credentials(url)
    try:
        engine = make_engine(parsed.without_userinfo() if login else url, login)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StoreError(f"malformed job store URL {shown!r} ({scrub(str(exc))}): {_USAGE}") from None
    except ModuleNotFoundError as exc:
        raise StoreError(f"the driver for {shown} is not installed ({exc.name}); pip install psycopg") from None
    return SqlStore(engine, shown)


def _open_mongo(url: str, shown: str, timeout: float) -> JobStore:
    import pymongo
    from pymongo.uri_parser import parse_uri

    from hks.store.mongo import MongoStore

    parsed, login = credentials(url)
    bare = parsed.without_userinfo() if login else url
    try:
        parsed_uri = parse_uri(bare)
    except (pymongo.errors.InvalidURI, pymongo.errors.ConfigurationError, ValueError) as exc:
        raise StoreError(f"malformed job store URL {shown!r} ({scrub(str(exc))}): {_USAGE}") from None
    options: dict = {"serverSelectionTimeoutMS": int(timeout * 1000), "connectTimeoutMS": int(timeout * 1000)}
    if login:
        options.update(username=login[0], password=login[1])
        if "authsource" not in {key.lower() for key in parsed_uri["options"]}:
            # a URL's own credentials authenticate against its database, as pymongo does; the official
            # image creates MONGO_INITDB_ROOT_USERNAME (given through the environment) in admin
            from_url = parsed.password is not None
            options["authSource"] = (parsed_uri.get("database") or "admin") if from_url else "admin"
    client = pymongo.MongoClient(bare, **options)
    try:
        client.admin.command("ping")
        return MongoStore(client, parsed_uri.get("database") or MONGO_DB_NAME, shown)
    except Exception:
        client.close()
        raise
