"""Optional dependencies of the tests: outside CI a missing one skips with the reason; in CI
(``CI=true``), which installs every one of them, a missing one is a failure, never a skip."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip with ``reason`` here; fail with it in CI, where the thing is always provided."""
    if in_ci():
        pytest.fail(f"{reason} (CI installs it: a missing one is a broken install)")
    pytest.skip(reason)


def require(module: str, install: str | None = None) -> ModuleType:
    """Import ``module``; outside CI skip when it is missing, in CI fail."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"{module} is not installed ({exc}): pip install {install or module}")
        raise  # unreachable: unavailable() always raises
