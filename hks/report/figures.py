"""The report's pictures, drawn with matplotlib's Agg renderer (no display, no pyplot state).

Each function draws one PNG and returns its path. Colours always mean the same thing: the
``viridis`` scale is validation fine accuracy (in accuracy units, shown on a colour bar); failed
trials are grey crosses. Hyperparameter axes come from :func:`hks.report.frame.make_axis`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import cm, colormaps, colors
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from hks.report.frame import ACCURACY, Axis, make_axis
from hks.report.importance import Importance

CMAP = "viridis"
ACCURACY_LABEL = "validation fine accuracy"
DPI = 80
JITTER = 0.12
FAILED_STYLE = {"marker": "x", "color": "0.55", "linewidths": 1.0}


def _accuracy_norm(frame: pd.DataFrame) -> colors.Normalize:
    acc = frame[ACCURACY].dropna()
    low, high = (float(acc.min()), float(acc.max())) if len(acc) else (0.0, 1.0)
    if high - low < 1e-3:
        low, high = low - 0.01, high + 0.01
    return colors.Normalize(vmin=low, vmax=high)


def _colorbar(fig: Figure, norm: colors.Normalize, axes: Any, label: str = ACCURACY_LABEL, cmap: str = CMAP) -> None:
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=axes, label=label, shrink=0.8)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def _jittered(axis: Axis, seed: int) -> np.ndarray:
    """Categorical positions spread a little so that trials on the same category stay visible."""
    if axis.kind != "categorical":
        return axis.positions
    return axis.positions + np.random.default_rng(seed).uniform(-JITTER, JITTER, len(axis.positions))


def _set_ticks(ax: Any, axis: Axis, which: str, show: bool) -> None:
    set_ticks = ax.set_xticks if which == "x" else ax.set_yticks
    set_ticks(axis.ticks, axis.labels if show else [])
    low, high = axis.span
    pad = 0.5 if axis.kind == "categorical" else 0.08 * (high - low)
    (ax.set_xlim if which == "x" else ax.set_ylim)(low - pad, high + pad)
    if show and which == "x":
        ax.tick_params(axis="x", labelrotation=60)


def scatter_matrix(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> Path:
    """Pairs of tried hyperparameters, coloured by accuracy; the diagonal counts each one's values."""
    axes_ = [make_axis(frame, c) for c in columns]
    ok = frame[ACCURACY].notna().to_numpy()
    norm, n = _accuracy_norm(frame), len(axes_)
    size = max(5.0, 1.45 * n + 1)
    fig = Figure(figsize=(size, size))
    grid = fig.subplots(n, n, squeeze=False)
    fig.subplots_adjust(wspace=0.12, hspace=0.12)
    jittered = [_jittered(a, seed=i) for i, a in enumerate(axes_)]
    for i, row_axis in enumerate(axes_):
        for j, col_axis in enumerate(axes_):
            ax = grid[i][j]
            if j > i:
                ax.set_axis_off()
                continue
            if i == j:
                _value_counts(ax, col_axis)
                ax.set_title(_wrap(col_axis.name), fontsize=7)
            else:
                ax.scatter(jittered[j][ok], jittered[i][ok], c=frame[ACCURACY][ok], cmap=CMAP, norm=norm, s=22,
                           edgecolors="k", linewidths=0.3)
                ax.scatter(jittered[j][~ok], jittered[i][~ok], s=22, **FAILED_STYLE)
                _set_ticks(ax, row_axis, "y", show=j == 0)
            _set_ticks(ax, col_axis, "x", show=i == n - 1)
            if j == 0 and i > 0:
                ax.set_ylabel(_wrap(row_axis.name), fontsize=8)
            if i == n - 1:
                ax.set_xlabel(_wrap(col_axis.name), fontsize=8)
            ax.tick_params(labelsize=7)
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=CMAP), cax=_upper_right(fig, grid), label=ACCURACY_LABEL,
                 orientation="horizontal")
    fig.suptitle("Tried hyperparameters, coloured by validation fine accuracy (grey x: failed trial)",
                 y=grid[0][0].get_position().y1 + 0.5 / size)
    return _save(fig, path)


def _upper_right(fig: Figure, grid: Any) -> Any:
    """Colour-bar axes in the empty upper triangle (or beside a single cell)."""
    n = len(grid)
    if n == 1:
        return grid[0][0].inset_axes((0.0, 1.25, 1.0, 0.06))
    first, last = grid[0][max(1, n // 2)].get_position(), grid[0][n - 1].get_position()
    height = last.y1 - last.y0
    return fig.add_axes((first.x0, last.y0 + 0.45 * height, last.x1 - first.x0, 0.12 * height))


def _wrap(name: str, width: int = 14) -> str:
    """Long snake_case names over two lines, split at an underscore, so neighbours do not overlap."""
    if len(name) <= width or "_" not in name:
        return name
    cut = min((i for i, ch in enumerate(name) if ch == "_"), key=lambda i: abs(i - len(name) / 2))
    return name[:cut + 1] + "\n" + name[cut + 1:]


def _value_counts(ax: Any, axis: Axis) -> None:
    if axis.kind == "categorical":
        counts = [int(np.sum(axis.positions == t)) for t in axis.ticks]
        ax.bar(axis.ticks, counts, width=0.6, color="0.6")
    else:
        ax.hist(axis.positions, bins=min(10, max(3, len(axis.positions) // 2)), color="0.6")
    ax.set_yticks([])


def learning_curves(results: Sequence[Mapping[str, Any]], path: Path) -> Path | None:
    """Validation accuracy per epoch of every successful trial, coloured by its best accuracy."""
    curves = [(r["history"], -float(r["loss"])) for r in results if _has_curve(r)]
    if not curves:
        return None
    heads = [h for h in ("fine", "coarse") if any(f"val_{h}_accuracy" in c for c, _ in curves)]
    norm = _accuracy_norm(pd.DataFrame({ACCURACY: [best for _, best in curves]}))
    fig = Figure(figsize=(6.5 * len(heads) + 1, 4.5))
    panels = fig.subplots(1, len(heads), squeeze=False)[0]
    for ax, head in zip(panels, heads):
        for history, best in sorted(curves, key=lambda c: c[1]):
            values = history.get(f"val_{head}_accuracy")
            if values:
                ax.plot(range(1, len(values) + 1), values, color=colormaps[CMAP](norm(best)), alpha=0.85,
                        marker="." if len(values) < 30 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {head} accuracy")
        ax.set_title(f"Validation {head} accuracy per epoch")
        ax.grid(alpha=0.3)
    _colorbar(fig, norm, panels.tolist(), label="trial's best " + ACCURACY_LABEL)
    return _save(fig, path)


def _has_curve(result: Mapping[str, Any]) -> bool:
    loss = result.get("loss")
    return (result.get("status") == "ok" and isinstance(loss, (int, float)) and math.isfinite(loss)
            and bool((result.get("history") or {}).get("val_fine_accuracy")))


def optimisation_history(frame: pd.DataFrame, path: Path) -> Path:
    """Each trial's accuracy and the best so far, against trial number and against wall-clock time."""
    ok = frame[ACCURACY].notna().to_numpy()
    best_so_far = frame[ACCURACY].fillna(-np.inf).cummax().replace(-np.inf, np.nan)
    start = np.nanmin(frame["started_at"]) if frame["started_at"].notna().any() else np.nan
    minutes = (frame["finished_at"] - start) / 60.0
    fig = Figure(figsize=(13, 4.5))
    panels = fig.subplots(1, 2)
    for ax, x, label in ((panels[0], frame["number"], "trial number"),
                         (panels[1], minutes, "wall-clock time since the first trial started (minutes)")):
        order = np.argsort(x.to_numpy(), kind="stable")
        ax.scatter(x[ok], frame[ACCURACY][ok], s=28, label="trial", zorder=3)
        ax.step(x.to_numpy()[order], np.fmax.accumulate(frame[ACCURACY].fillna(-np.inf).to_numpy()[order]),
                where="post", color="tab:red", label="best so far")
        if (~ok).any():
            ax.scatter(x[~ok], np.zeros(int((~ok).sum())), s=40, label="failed trial", zorder=3, clip_on=False,
                       **FAILED_STYLE)
        ax.set_xlabel(label)
        ax.set_ylabel(ACCURACY_LABEL)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    top = best_so_far.max()
    ymax = (1.1 * top) if np.isfinite(top) and top > 0 else 1.0
    for ax in panels:
        ax.set_ylim(0.0, min(1.0, ymax))
    panels[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    panels[0].set_title("Optimisation history by trial")
    panels[1].set_title("Optimisation history by wall-clock time")
    return _save(fig, path)


def parallel_coordinates(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> Path:
    """One vertical axis per hyperparameter (and accuracy last); one line per trial."""
    axes_ = [make_axis(frame, c) for c in columns]
    ok = frame[ACCURACY].notna().to_numpy()
    norm, n = _accuracy_norm(frame), len(axes_) + 1
    acc_axis = Axis(ACCURACY_LABEL, "numeric", frame[ACCURACY].fillna(norm.vmin).to_numpy(float),
                    (norm.vmin, (norm.vmin + norm.vmax) / 2, norm.vmax),
                    tuple(f"{v:.3f}" for v in (norm.vmin, (norm.vmin + norm.vmax) / 2, norm.vmax)))
    every = axes_ + [acc_axis]
    ys = np.column_stack([a.normalized() for a in every])
    fig = Figure(figsize=(max(8.0, 1.1 * n + 2), 5.5))
    ax = fig.subplots()
    xs = np.arange(n)
    for row in np.flatnonzero(~ok):
        ax.plot(xs[:-1], ys[row, :-1], color="0.6", linestyle="--", linewidth=1)
    for row in np.flatnonzero(ok)[np.argsort(frame[ACCURACY].to_numpy()[ok])]:
        ax.plot(xs, ys[row], color=colormaps[CMAP](norm(frame[ACCURACY].iloc[row])), linewidth=1.6, alpha=0.9)
    for x, axis in zip(xs, every):
        ax.axvline(x, color="k", linewidth=0.8)
        low, high = axis.span
        for tick, label in zip(axis.ticks, axis.labels):
            ax.text(x + 0.04, (tick - low) / (high - low), label, fontsize=7, va="center")
    ax.set_xticks(xs, [a.name for a in every], rotation=45, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_xlim(-0.2, n - 0.5)
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Parallel coordinates (grey dashed: failed trial)")
    _colorbar(fig, norm, ax)
    return _save(fig, path)


def slice_plots(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> Path:
    """Accuracy against each hyperparameter alone, coloured by trial number (later trials lighter)."""
    axes_ = [make_axis(frame, c) for c in columns]
    ok = frame[ACCURACY].notna().to_numpy()
    ncols = min(4, len(axes_))
    nrows = math.ceil(len(axes_) / ncols)
    fig = Figure(figsize=(3.4 * ncols + 1, 2.9 * nrows))
    grid = fig.subplots(nrows, ncols, squeeze=False)
    norm = colors.Normalize(vmin=1, vmax=max(2, int(frame["number"].max())))
    for index, ax in enumerate(grid.ravel()):
        if index >= len(axes_):
            ax.set_axis_off()
            continue
        axis = axes_[index]
        x = _jittered(axis, seed=index)
        ax.scatter(x[ok], frame[ACCURACY][ok], c=frame["number"][ok], cmap="plasma", norm=norm, s=24,
                   edgecolors="k", linewidths=0.3)
        _set_ticks(ax, axis, "x", show=True)
        ax.set_title(axis.name + (" (log scale)" if axis.log else ""), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if index % ncols == 0:
            ax.set_ylabel(ACCURACY_LABEL, fontsize=8)
    _colorbar(fig, norm, grid.ravel().tolist(), label="trial number", cmap="plasma")
    fig.suptitle("Slice plots: validation fine accuracy against each hyperparameter",
                 y=grid[0][0].get_position().y1 + 0.5 / fig.get_figheight())
    return _save(fig, path)


def importance_bars(importance: Importance, path: Path) -> Path | None:
    """Horizontal bars of the importances, with their spread over the shuffles."""
    if not importance.scores:
        return None
    names, means, stds = zip(*reversed(importance.scores))
    fig = Figure(figsize=(8, 0.35 * len(names) + 1.5))
    ax = fig.subplots()
    ax.barh(names, means, xerr=stds, color="tab:blue", alpha=0.8)
    ax.axvline(0, color="k", linewidth=0.8)
    ax.set_xlabel("mean drop of the surrogate's R\u00b2 when shuffled")
    ax.set_title("Hyperparameter importance (permutation, random-forest surrogate)")
    ax.tick_params(labelsize=8)
    return _save(fig, path)
