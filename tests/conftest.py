"""Shared fixtures: the real mini CIFAR archives beside the project, and tiny settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hks.config import Settings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _data_dir(name: str) -> Path:
    folder = SHARED_DATA / name
    if not folder.is_dir():
        pytest.fail(f"the mini datasets are missing: expected {folder} (../shared/data beside the project)")
    return folder


@pytest.fixture(scope="session")
def cifar100_dir() -> Path:
    return _data_dir("cifar-100-mini")


@pytest.fixture(scope="session")
def cifar10_dir() -> Path:
    return _data_dir("cifar-10-mini")


@pytest.fixture
def tiny_settings(tmp_path: Path, cifar100_dir: Path) -> Settings:
    """A search that finishes in seconds: CIFAR-100 mini, 1 epoch, one thread, files under tmp_path.
    hyperopt's TPE, whose random start-up draws small models here (mtpe's space-filling design draws
    residual units in two of three, doubling the time); the README's commands train with the default."""
    return Settings(data_dir=str(cifar100_dir), download=False, epochs=1, patience=1, threads=1, algo="tpe",
                    max_evals=3, n_startup_trials=2, results_dir=str(tmp_path / "results"),
                    trials_file=str(tmp_path / "results.pkl"), plots=False)
