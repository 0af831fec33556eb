"""The data the report page draws from: one compact JSON document embedded in the page.

Columns rather than records, and numbers rounded to 4 significant digits, keep a 10,000-trial page
small. Hyperparameter axes come from :func:`hks.report.frame.make_axis`, so the page places numbers,
categories and ``None`` exactly as the importance surrogate encodes them.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hks import results as res
from hks.report.frame import REACHED, SCORE, Axis, flatten_point, make_axis, param_name
from hks.report.html import format_value
from hks.report.importance import Importance
from hks.report.snapshot import PendingTrial, Snapshot

# train / validation loss and accuracy per epoch; the coarse head's when there is one
CURVES = ("fine_loss", "val_fine_loss", "fine_accuracy", "val_fine_accuracy", "coarse_accuracy",
          "val_coarse_accuracy")


def rounded(value: Any) -> Any:
    """4 significant digits for floats (None for NaN and infinities); other values unchanged."""
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return float(f"{value:.4g}") if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    return [rounded(v) if not (isinstance(v, float) and math.isnan(v)) else None for v in frame[name]]


def _times(values: Any) -> list[float | None]:
    """Unix times to a tenth of a second (4 significant digits would lose the date)."""
    return [round(float(v), 1) if isinstance(v, (int, float)) and math.isfinite(v) else None for v in values]


def _curves(history: dict[str, Any] | None) -> str | None:
    """Per-epoch curves as one short string, ``CURVES`` in order: ``"v,v,v;v,v,v;..."`` (an empty part:
    no such curve; an empty value: None). Strings keep the page's JSON quick to parse; the page
    decodes a trial's curves only when it draws them."""
    history = history or {}
    parts = [",".join("" if rounded(v) is None else repr(rounded(v)) for v in history.get(key) or [])
             for key in CURVES]
    return ";".join(parts) if any(parts) else None


def _metric_curves(metrics: list[dict[str, Any]]) -> dict[str, list[Any]] | None:
    """Per-epoch metrics as a worker pushes them (one dict per epoch) as curves."""
    return _curves({key: [m.get(key) for m in metrics] for key in CURVES if any(key in m for m in metrics)})


def axis_payload(axis: Axis, values: list[Any]) -> dict[str, Any]:
    """One hyperparameter for the page: category codes with their names, or numbers (None for None)."""
    out: dict[str, Any] = {"name": axis.name, "kind": axis.kind, "log": axis.log,
                           "ticks": [rounded(t) for t in axis.ticks], "labels": list(axis.labels)}
    if axis.kind == "categorical":
        out["values"] = [int(p) for p in axis.positions]
    else:
        out["values"] = [None if v is None or (isinstance(v, float) and math.isnan(v)) else rounded(float(v))
                         for v in values]
        out["none_at"] = rounded(float(axis.ticks[0])) if axis.labels and axis.labels[0] == "None" else None
    return out


def json_link(result: dict[str, Any], results_dir: Path, out_dir: Path) -> str | None:
    """The trial's JSON result relative to the page, when it is there to open."""
    name = result.get("model_name")
    path = results_dir / f"{name}{res.RESULT_SUFFIX}" if name else None
    if path is None or not path.is_file():
        return None
    return Path(os.path.relpath(path, out_dir)).as_posix()


def trials_payload(frame: pd.DataFrame, results: list[dict[str, Any]], columns: list[str], results_dir: Path,
                   out_dir: Path) -> dict[str, Any]:
    """Every finished trial, column by column, in trial order (the frame's order)."""
    if frame.empty:
        return {"n": [], "hp": [], "curves": []}
    ordered = [results[i] for i in frame["index"]]
    return {
        "n": [int(r["tid"]) + 1 if isinstance(r.get("tid"), (int, float)) else int(n)
              for r, n in zip(ordered, frame["number"])],
        "status": list(frame["status"]),
        "paused": [bool(r.get("paused")) and r.get("status") == res.STATUS_PRUNED for r in ordered],  # may resume
        "acc": _column(frame, SCORE), "reached": _column(frame, REACHED),
        "coarse": _column(frame, "coarse_accuracy"),
        "epochs": [rounded(v) for v in frame["epochs_run"]], "params": [rounded(v) for v in frame["params"]],
        "seconds": _column(frame, "train_seconds"), "started": _times(frame["started_at"]),
        "model": list(frame["model_name"]),
        "error": list(frame["error"]), "error_type": list(frame["error_type"]),
        "pruned_at": [rounded(v) if v is not None and not pd.isna(v) else None for v in frame["pruned_at_epoch"]],
        "json": [json_link(r, results_dir, out_dir) for r in ordered],
        "curves": [_curves(r.get("history")) for r in ordered],
        "hp": [axis_payload(make_axis(frame, c), list(frame[c])) for c in columns],
    }


def pending_payload(pending: list[PendingTrial]) -> list[dict[str, Any]]:
    return [{"n": p.tid + 1, "state": p.state, "worker": p.worker, "epoch": p.epoch,
             "val_acc": rounded(p.val_accuracy), "started": _times([p.started_at])[0],
             "point": {k: format_value(v) for k, v in flatten_point(p.point).items()},
             "curves": _metric_curves(p.metrics)} for p in pending]


def importance_payload(importance: Importance) -> dict[str, Any]:
    return {"method": importance.method, "note": importance.note,
            "scores": [[name, rounded(mean), rounded(std)] for name, mean, std in importance.scores]}


def constant_settings(frame: pd.DataFrame, columns: list[str]) -> list[list[str]]:
    """Hyperparameters every trial shares: listed once, not plotted."""
    varying = set(columns)
    constant = [c for c in frame.columns if c.startswith("hp:") and c not in varying]
    return [[param_name(c), str(frame[c].iloc[0])] for c in sorted(constant)] if not frame.empty else []


def page_json(payload: dict[str, Any]) -> str:
    """The payload as text that is safe inside a ``<script type="application/json">`` element."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def snapshot_meta(snapshot: Snapshot) -> dict[str, Any]:
    started, taken = _times([snapshot.started_at, snapshot.taken_at])
    return {"curve_keys": list(CURVES), "budget": snapshot.budget, "started_at": started, "finished": snapshot.finished,
            "generated_at": taken, "seconds_left": rounded(snapshot.seconds_left())}
