"""Trial results as JSON files, and finding the best one by its metric (never by file name).

Each finished trial is written to ``<results_dir>/<model_name>.txt.json``. The model name starts
with the validation fine accuracy (``model_0.4312_ab12cd34``) so a folder listing sorts by it,
but lookups always read the ``loss`` field.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hks.errors import ConfigError

RESULT_SUFFIX = ".txt.json"
STATUS_OK = "ok"
STATUS_FAIL = "fail"
STATUS_PRUNED = "pruned"  # stopped by a pruner (hks.pruners); hyperopt sees it as ok (sampler_result)


def make_model_name(accuracy: float | None) -> str:
    accuracy_text = "fail" if accuracy is None or not math.isfinite(accuracy) else f"{accuracy:.4f}"
    return f"model_{accuracy_text}_{uuid.uuid4().hex[:8]}"


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples and non-finite floats (as null)."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_pickle(obj: Any, path: str | os.PathLike) -> None:
    atomic_write_bytes(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def make_results_dir(results_dir: str | os.PathLike) -> None:
    """Create ``--results-dir`` now, or say in one line why it cannot be: found out after a trial, it
    would cost that trial's JSON and stop the search with a traceback."""
    path = Path(results_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        usable = os.access(path, os.W_OK | os.X_OK)
    except OSError as exc:
        reason = "it is a file" if isinstance(exc, FileExistsError) else exc.strerror or str(exc)
        raise ConfigError(f"--results-dir {path} cannot be a folder of results ({reason}): "
                          "give a folder that exists or can be created") from None
    if not usable:
        raise ConfigError(f"--results-dir {path} is not writable: give a folder you can write to")


def write_result(result: dict[str, Any], results_dir: str | os.PathLike) -> Path:
    """Write one trial's result atomically; returns its path."""
    path = Path(results_dir) / f"{result['model_name']}{RESULT_SUFFIX}"
    text = json.dumps(to_jsonable(result), indent=2, sort_keys=True)
    atomic_write_bytes(path, text.encode())
    return path


def load_results(results_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Every JSON result in a folder (unreadable files are skipped: they may be half-copied)."""
    results = []
    for path in sorted(Path(results_dir).glob(f"*{RESULT_SUFFIX}")):
        try:
            results.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return results


def results_from_trials(trials: Any) -> list[dict[str, Any]]:
    """The result dicts of a hyperopt ``Trials`` (finished trials only), in trial order."""
    out = []
    for trial in trials.trials:
        result = trial.get("result") or {}
        if result.get("status") in (STATUS_OK, STATUS_FAIL, STATUS_PRUNED):
            out.append({**result, "tid": trial.get("tid")})
    return out


def succeeded(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed trials: a pruned one never wins, even as the ``ok`` view hyperopt was given."""
    return [r for r in results if r.get("status") == STATUS_OK and not r.get("pruned") and _finite(r.get("loss"))]


def best_result(results: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The successful result with the lowest ``loss`` (highest validation fine accuracy); of equal ones,
    the earliest trial, whichever order the results come in (finishing order, a folder's file names)."""
    ok = succeeded(results)
    return min(ok, key=lambda r: (r["loss"], _tid_order(r.get("tid")))) if ok else None


def _tid_order(tid: Any) -> float:
    return float(tid) if _finite(tid) else math.inf


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
