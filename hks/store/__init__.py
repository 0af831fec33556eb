"""Job stores for distributed searches, named by URL.

``sqlite:///results/store.sqlite3`` (several processes on one machine, no server),
``postgresql://USER:PASSWORD@HOST:PORT/DB`` (many machines) and ``mongodb://USER:PASSWORD@HOST:PORT/DB``
(the classic ``MONGO_DB_HOST`` / ``MONGO_DB_PORT`` setup). Every message shows the URL with its
password masked, so credentials never reach a terminal or a log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from hks.config import Settings
from hks.errors import ConfigError, StoreError
from hks.store.protocol import JobStore

MONGO_DB_NAME = "hks"
LOCAL_STORE_FILE = "store.sqlite3"
CONNECT_TIMEOUT_SECONDS = 10
USER_ENV, PASSWORD_ENV = "HKS_STORE_USER", "HKS_STORE_PASSWORD"
_USAGE = ("use sqlite:///PATH, postgresql://USER:PASSWORD@HOST:PORT/DB or mongodb://USER:PASSWORD@HOST:PORT/DB")


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (in the user part and in ``password=``)."""
    url = re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&]*", r"\1***", url)


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that gives it back (for child processes,
    so that no password shows in a process list)."""
    match = re.search(r"://([^/@:]*):([^@/]*)@", url)
    if not match:
        return url, {}
    bare = url[:match.start()] + f"://{match.group(1)}@" + url[match.end():]
    return bare, {USER_ENV: unquote(match.group(1)), PASSWORD_ENV: unquote(match.group(2))}


def is_store_error(exc: BaseException) -> bool:
    """A database driver's error (connection lost, server restarting...), as opposed to a bug."""
    return any(cls.__module__.startswith(("sqlalchemy", "pymongo", "psycopg", "sqlite3"))
               for cls in type(exc).__mro__)


def describe(exc: BaseException) -> str:
    """A driver error in one line, with anything that looks like a URL password masked."""
    return f"{type(exc).__name__}: {_scrub(exc, '')}"


def _scrub(text: str, url: str) -> str:
    """An error message, first line only, with the URL's password removed wherever it appears."""
    match = re.search(r"://[^/@:]*:([^@/]*)@", url)
    line = (str(text).strip().splitlines() or [""])[0]
    line = re.split(r" \(configured timeouts|, Timeout: ", line)[0]  # pymongo appends its whole topology
    if match and match.group(1):
        line = line.replace(match.group(1), "***")
    return mask_url(line)[:300]


def store_url(settings: Settings) -> str:
    """The store a search or worker uses: ``--store``, else ``MONGO_DB_HOST``, else a local SQLite
    file when ``--workers`` asks for local workers, else "" (trials run in-process)."""
    if settings.store:
        return settings.store
    if settings.mongo_db_host:
        return f"mongodb://{settings.mongo_db_host}:{settings.mongo_db_port}/{MONGO_DB_NAME}"
    from hks.local_workers import worker_count  # imports this module

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
    from hks.local_workers import worker_count

    worker_count(settings)  # a bad --workers says so here
    for name in ("queue_len", "idle_timeout"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(settings, name)}")
    if ":" not in settings.objective:
        raise ConfigError(f"--objective={settings.objective!r} must be module:function, "
                          "e.g. hks.objective:run_trial")


def env_credentials() -> tuple[str, str] | None:
    """(user, password) from HKS_STORE_USER / HKS_STORE_PASSWORD, for URLs that carry none.

    Deliberately not settings: settings are saved in the experiment record and in results."""
    password = os.environ.get(PASSWORD_ENV, "")
    return (os.environ.get(USER_ENV, ""), password) if password else None


def open_store(url: str, *, timeout: float = CONNECT_TIMEOUT_SECONDS) -> JobStore:
    """Connect to the store a URL names (creating its tables/indexes), or raise a one-line StoreError."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    shown = mask_url(url)
    try:
        if scheme == "sqlite" or scheme.startswith(("sqlite+", "postgresql", "postgres")):
            return _open_sql(url, shown)
        if scheme in ("mongodb", "mongodb+srv"):
            return _open_mongo(url, shown, timeout)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"cannot open the job store {shown}: {_scrub(exc, url)} "
                         "(is the server running and reachable, and are the user and password right?)") from None
    raise StoreError(f"unsupported job store URL {shown!r}: {_USAGE}")


def _open_sql(url: str, shown: str) -> JobStore:
    import sqlalchemy as sa

    from hks.store.sql import SqlStore, make_engine

    try:
        engine = make_engine(url, env_credentials())
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise StoreError(f"malformed job store URL {shown!r} ({_scrub(exc, url)}): {_USAGE}") from None
    except ModuleNotFoundError as exc:
        raise StoreError(f"the driver for {shown} is not installed ({exc.name}); pip install psycopg") from None
    return SqlStore(engine, shown)


def _open_mongo(url: str, shown: str, timeout: float) -> JobStore:
    import pymongo
    from pymongo.uri_parser import parse_uri

    from hks.store.mongo import MongoStore

    try:
        parsed = parse_uri(url)
    except (pymongo.errors.InvalidURI, pymongo.errors.ConfigurationError, ValueError) as exc:
        raise StoreError(f"malformed job store URL {shown!r} ({_scrub(exc, url)}): {_USAGE}") from None
    options: dict = {"serverSelectionTimeoutMS": int(timeout * 1000), "connectTimeoutMS": int(timeout * 1000)}
    credentials = env_credentials()
    if credentials and parsed["password"] is None:
        options.update(username=credentials[0], password=credentials[1])
        if "authsource" not in {key.lower() for key in parsed["options"]}:
            options["authSource"] = "admin"  # where the official image creates MONGO_INITDB_ROOT_USERNAME
    client = pymongo.MongoClient(url, **options)
    try:
        client.admin.command("ping")
        return MongoStore(client, parsed.get("database") or MONGO_DB_NAME, shown)
    except Exception:
        client.close()
        raise
