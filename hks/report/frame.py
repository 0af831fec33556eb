"""Trial results as one table: a row per trial, a column per hyperparameter.

Every figure places a hyperparameter on an axis through :class:`Axis`, so numeric and categorical
hyperparameters are handled the same way everywhere: numbers on a linear (or log) scale, categories
(strings, booleans, small sets of integers) at evenly spaced positions with their names as ticks.
``None`` (no first conv, no residual units, no second dense layer) is a category of its own; on a
numeric axis it sits apart, left of the smallest value, with the tick label ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hks import results as res

PARAM_PREFIX = "hp:"
SCORE = "score"  # the search's metric, as the page shows it (:class:`Metric`; successful trials only)
REACHED = "reached"  # the same, and the best accuracy a pruned trial reached before it was stopped
NONE_LABEL = "None"
MAX_INTEGER_CATEGORIES = 6
LOG_SCALE_RATIO = 10.0


@dataclass(frozen=True)
class Metric:
    """What the page calls a trial's score, and which way is better. hks's objective minimises minus the
    validation fine accuracy, which the page shows as the accuracy; a custom objective's loss is shown as
    it is (negated, it would read as a negative "accuracy")."""

    label: str
    short: str  # for axis titles, hover text and table headings
    higher_better: bool

    def of(self, loss: float) -> float:
        return -loss if self.higher_better else loss

    def text(self, loss: float) -> str:
        """The score of ``loss`` as the page writes it: an accuracy to 4 decimals, a loss to 4 digits."""
        return f"{self.of(loss):.4f}" if self.higher_better else f"{self.of(loss):.4g}"


ACCURACY_METRIC = Metric("validation fine accuracy", "val fine acc", True)
LOSS_METRIC = Metric("loss", "loss", False)


def metric_of(results: Iterable[Mapping[str, Any]]) -> Metric:
    """Accuracy when successful trials recorded one (hks's objective, ``keras_objective``), else the loss."""
    ok = [r for r in results if r.get("status") == res.STATUS_OK]
    return ACCURACY_METRIC if not ok or any("fine_best_accuracy" in r for r in ok) else LOSS_METRIC


def flatten_point(point: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested space points (user spaces may nest dicts) as ``outer.inner`` keys."""
    flat: dict[str, Any] = {}
    for key, value in point.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_point(value, name + "."))
        elif isinstance(value, (list, tuple)):
            flat[name] = str(list(value))
        else:
            flat[name] = value
    return flat


def _finite_or_nan(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else math.nan


def _reached(result: Mapping[str, Any], metric: Metric) -> float:
    """A pruned trial's best validation fine accuracy before it was stopped (else its loss, as the metric
    shows it)."""
    best = _finite_or_nan(result.get("fine_best_accuracy"))
    if math.isfinite(best):
        return best
    history = [_finite_or_nan(v) for v in (result.get("history") or {}).get("val_fine_accuracy") or []]
    finite = [v for v in history if math.isfinite(v)]
    return max(finite) if finite else metric.of(_finite_or_nan(result.get("loss")))


def results_frame(results: Iterable[Mapping[str, Any]], metric: Metric = ACCURACY_METRIC) -> pd.DataFrame:
    """One row per result, in trial order, with ``hp:<name>`` columns for the hyperparameters."""
    rows = []
    for index, result in enumerate(results):
        ok = result.get("status") == res.STATUS_OK and math.isfinite(_finite_or_nan(result.get("loss")))
        pruned = result.get("status") == res.STATUS_PRUNED
        score = metric.of(_finite_or_nan(result.get("loss")))
        row = {
            "index": index,  # where the result is in the list given, whatever the order here
            "number": index + 1,
            "tid": result.get("tid"),
            "status": res.STATUS_OK if ok else res.STATUS_PRUNED if pruned else res.STATUS_FAIL,
            SCORE: score if ok else math.nan,
            REACHED: score if ok else _reached(result, metric) if pruned else math.nan,
            "pruned_at_epoch": result.get("pruned_at_epoch") if pruned else None,
            "coarse_accuracy": _finite_or_nan(result.get("coarse_best_accuracy")) if ok else math.nan,
            "started_at": _finite_or_nan(result.get("started_at")),
            "finished_at": _finite_or_nan(result.get("finished_at")),
            "train_seconds": _finite_or_nan(result.get("train_seconds")),
            "epochs_run": result.get("epochs_run"),
            "params": result.get("params"),
            "model_name": result.get("model_name") or "",
            "error": result.get("error") or "",
            "error_type": result.get("error_type") or "",
        }
        for key, value in flatten_point(result.get("space") or {}).items():
            row[PARAM_PREFIX + key] = value
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = "tid" if frame["tid"].notna().all() else "started_at"  # JSON folders list by accuracy
    frame = frame.sort_values(order, kind="stable", na_position="last").reset_index(drop=True)
    frame["number"] = np.arange(1, len(frame) + 1)
    return frame


def param_columns(frame: pd.DataFrame, *, varying_only: bool = True) -> list[str]:
    """The hyperparameter columns; constant ones say nothing about accuracy and are left out."""
    columns = [c for c in frame.columns if c.startswith(PARAM_PREFIX)]
    if varying_only:
        columns = [c for c in columns if frame[c].map(_category_key).nunique() > 1]
    return columns


def param_name(column: str) -> str:
    return column.removeprefix(PARAM_PREFIX)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _category_key(value: Any) -> str:
    if _is_missing(value):
        return NONE_LABEL
    if _is_number(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Axis:
    """Where the values of one hyperparameter go on a plot axis, and how to label it."""

    name: str
    kind: str  # "numeric" or "categorical"
    positions: np.ndarray  # one float per row of the frame
    ticks: tuple[float, ...]
    labels: tuple[str, ...]
    log: bool = False

    @property
    def span(self) -> tuple[float, float]:
        finite = self.positions[np.isfinite(self.positions)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if self.ticks:
            low, high = min(low, min(self.ticks)), max(high, max(self.ticks))
        return (low, high) if high > low else (low - 0.5, high + 0.5)

    def normalized(self) -> np.ndarray:
        """Positions mapped to 0..1 (parallel coordinates)."""
        low, high = self.span
        return (self.positions - low) / (high - low)


def make_axis(frame: pd.DataFrame, column: str) -> Axis:
    """Numeric when every non-None value is a number with enough distinct values, else categorical."""
    values = list(frame[column])
    present = [v for v in values if not _is_missing(v)]
    numeric = bool(present) and all(_is_number(v) for v in present)
    distinct = {float(v) for v in present} if numeric else set()
    small_integer_set = numeric and len(distinct) <= MAX_INTEGER_CATEGORIES and all(v.is_integer() for v in distinct)
    if numeric and not small_integer_set:
        return _numeric_axis(param_name(column), values, np.array(sorted(distinct)))
    return _categorical_axis(param_name(column), values)


def _categorical_axis(name: str, values: list[Any]) -> Axis:
    keys = [_category_key(v) for v in values]
    order = sorted(set(keys), key=_category_order)
    index = {key: float(i) for i, key in enumerate(order)}
    positions = np.array([index[k] for k in keys], dtype=float)
    return Axis(name, "categorical", positions, tuple(index.values()), tuple(order))


def _category_order(key: str) -> tuple[int, float, str]:
    """``None`` first, then numbers in numeric order, then text alphabetically."""
    if key == NONE_LABEL:
        return (0, 0.0, key)
    try:
        return (1, float(key), key)
    except ValueError:
        return (2, 0.0, key)


def _numeric_axis(name: str, values: list[Any], distinct: np.ndarray) -> Axis:
    low, high = float(distinct[0]), float(distinct[-1])
    log = low > 0 and high / low >= LOG_SCALE_RATIO
    scale = np.log10 if log else (lambda v: v)
    positions = np.array([math.nan if _is_missing(v) else float(scale(float(v))) for v in values])
    s_low, s_high = float(scale(low)), float(scale(high))
    ticks = list(np.linspace(s_low, s_high, 3)) if s_high > s_low else [s_low]
    labels = [_format_number(10 ** t if log else t) for t in ticks]
    if any(_is_missing(v) for v in values):
        none_at = s_low - 0.25 * max(s_high - s_low, 1e-9)
        positions = np.where(np.isnan(positions), none_at, positions)
        ticks.insert(0, none_at)
        labels.insert(0, NONE_LABEL)
    return Axis(name, "numeric", positions, tuple(ticks), tuple(labels), log)


def _format_number(value: float) -> str:
    return f"{value:.3g}"
