"""Store URLs and their credentials: parsing any password (``/``, ``@``, ``:``, ``%``...), masking it
in everything hks prints, and taking it from the environment or a file instead of the command line.

Credentials, in order: the URL's own ``USER:PASSWORD@``; else ``HKS_STORE_USER`` with
``HKS_STORE_PASSWORD`` or the file ``HKS_STORE_PASSWORD_FILE`` names (e.g. a Docker secret,
``/run/secrets/hks_store_password``). Every password hks has seen is remembered in this process and
masked wherever it appears in a message (:func:`scrub`), so a driver error quoting it is safe too.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from hks.errors import StoreError

USER_ENV, PASSWORD_ENV, PASSWORD_FILE_ENV = "HKS_STORE_USER", "HKS_STORE_PASSWORD", "HKS_STORE_PASSWORD_FILE"
MASK = "***"
_SECRETS: set[str] = set()
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_QUERY_PASSWORD = re.compile(r"(?i)\b(password|passwd|pwd)=([^&\s'\"]*)")


@dataclass(frozen=True)
class ParsedUrl:
    """A URL cut around its user part: ``prefix`` (``scheme://``), ``user``, ``password`` (decoded,
    None when absent) and ``rest`` (host, path, query)."""

    prefix: str
    user: str
    password: str | None
    rest: str
    had_userinfo: bool

    def bare(self) -> str:
        """The URL without its password (the user stays)."""
        return f"{self.prefix}{self.user}@{self.rest}" if self.user else f"{self.prefix}{self.rest}"

    def without_userinfo(self) -> str:
        return f"{self.prefix}{self.rest}"


def is_store_url(source: str) -> bool:
    """Whether a storage or report source names a job store (``scheme://...``) rather than a file or folder."""
    return "://" in source


def parse(url: str) -> ParsedUrl:
    """Split ``scheme://user:password@rest``: the user part ends at the last ``@`` before the query,
    so a password may hold ``/``, ``@`` or ``:`` even when the user did not percent-encode it."""
    if not _SCHEME.match(url):
        return ParsedUrl("", "", None, url, False)
    prefix_end = url.index("://") + 3
    head = url[prefix_end:].split("?", 1)[0]
    at = head.rfind("@")
    if at < 0:
        user, password, rest, had = "", None, url[prefix_end:], False
    else:
        userinfo, rest, had = head[:at], url[prefix_end + at + 1:], True
        user, colon, password = userinfo.partition(":")
        user, password = unquote(user), unquote(password) if colon else None
    if password is None and (match := _QUERY_PASSWORD.search(rest)):  # ...?password=SECRET
        password = unquote(match.group(2))
        rest = re.sub(r"[?&]$", "", rest[:match.start()] + rest[match.end():].lstrip("&")).replace("?&", "?")
    return ParsedUrl(url[:prefix_end], user, password, rest, had)


def remember_secret(secret: str | None) -> None:
    """Mask this secret (raw and as it would be written in a URL) in every message from now on."""
    if secret and len(secret) >= 3:
        from urllib.parse import quote

        _SECRETS.update({secret, quote(secret, safe=""), quote(secret)})


def scrub(text: str) -> str:
    """A message, first line only, with every known password and every URL password masked."""
    line = (str(text).strip().splitlines() or [""])[0]
    line = re.split(r" \(configured timeouts|, Timeout: ", line)[0]  # pymongo appends its whole topology
    for secret in sorted(_SECRETS, key=len, reverse=True):
        line = line.replace(secret, MASK)
    return mask_url(line)[:300]


def mask_url(url: str) -> str:
    """The URL (or a message holding URLs) with any password replaced by ``***``."""
    parsed = parse(url)
    remember_secret(parsed.password)
    if parsed.password and parsed.had_userinfo and ":" in url[len(parsed.prefix):].split("?", 1)[0]:
        raw = url[len(parsed.prefix):].split("?", 1)[0]
        user, _, raw_password = raw[:raw.rfind("@")].partition(":")
        remember_secret(raw_password)
        url = f"{parsed.prefix}{user}:{MASK}@{parsed.rest}"
    url = re.sub(r"(://[^\s/@:]*:)[^\s@]*@", rf"\1{MASK}@", url)  # more URLs inside a message
    return _QUERY_PASSWORD.sub(lambda m: f"{m.group(1)}={MASK}", url)


def env_credentials() -> tuple[str, str] | None:
    """(user, password) from the environment, or from the file ``HKS_STORE_PASSWORD_FILE`` names.

    Deliberately not settings: settings are saved in the experiment record and in results."""
    password = os.environ.get(PASSWORD_ENV, "")
    path = os.environ.get(PASSWORD_FILE_ENV, "")
    if not password and path:
        try:
            password = Path(path).read_text().strip("\r\n")
        except OSError as exc:
            raise StoreError(f"cannot read the store password file {PASSWORD_FILE_ENV}={path} "
                             f"({exc.strerror}): fix the path or its permissions") from None
    remember_secret(password)
    return (os.environ.get(USER_ENV, ""), password) if password else None


def credentials(url: str) -> tuple[ParsedUrl, tuple[str, str] | None]:
    """The URL cut up, and the (user, password) to log in with: the URL's, else the environment's."""
    parsed = parse(url)
    if parsed.password is not None:
        remember_secret(parsed.password)
        return parsed, (parsed.user, parsed.password)
    from_env = env_credentials()
    if from_env is None:
        return parsed, None
    return parsed, (parsed.user or from_env[0], from_env[1])


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without its password, and the environment that gives it back (for child processes,
    so that no password shows in a process list)."""
    parsed = parse(url)
    if parsed.password is None:
        return url, {}
    remember_secret(parsed.password)
    return parsed.bare(), {USER_ENV: parsed.user, PASSWORD_ENV: parsed.password}
