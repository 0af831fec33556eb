"""Compose the report: results -> table -> pictures -> one HTML page beside its PNGs.

:func:`write_report` is what the search driver calls after every search and what ``python -m hks
report`` runs. A picture that cannot be drawn becomes a one-line note in the page instead of an
error, so a report never stops a search and a partial report is still written.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hks import results as res
from hks.config import Settings
from hks.report import figures
from hks.report.frame import ACCURACY, PARAM_PREFIX, flatten_point, param_columns, param_name, results_frame
from hks.report.html import Picture, Section, Table, render_page
from hks.report.importance import compute_importance

REPORT_FILE = "report.html"
PICTURES_FOLDER = "report"
TOP_TRIALS = 10


@dataclass
class ReportOutcome:
    """Where the page went and which pictures could not be drawn (and why)."""

    page: Path
    pictures: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    trials: int = 0
    succeeded: int = 0


def write_report(results: Sequence[dict[str, Any]], settings: Settings, *, out_dir: str | Path | None = None,
                 source: str = "") -> ReportOutcome:
    """Write ``<out_dir>/report.html`` (default: the results folder) and its PNGs for these results."""
    out = Path(out_dir if out_dir is not None else settings.results_dir)
    folder = out / PICTURES_FOLDER
    results = list(results)
    frame = results_frame(results)
    ok_count = int(frame[ACCURACY].notna().sum()) if not frame.empty else 0
    outcome = ReportOutcome(out / REPORT_FILE, trials=len(results), succeeded=ok_count)
    sections: list[Section] = []
    if ok_count:
        best = _with_test_record(res.best_result(results), settings)
        sections += _success_sections(results, frame, best, settings, folder, outcome)
    if not frame.empty and (frame["status"] != res.STATUS_OK).any():
        sections.append(_failed_section(frame))
    page = render_page(f"hks search report: {settings.experiment_name}", _summary(frame, results, source),
                       sections, notice=_notice(frame, source))
    res.atomic_write_bytes(outcome.page, page.encode("utf-8"))
    return outcome


def safe_write_report(results: Sequence[dict[str, Any]], settings: Settings, **kwargs: Any) -> str:
    """:func:`write_report` for search drivers: returns a one-line message and never raises."""
    try:
        outcome = write_report(results, settings, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a report must never lose a finished search
        return f"report not written: {type(exc).__name__}: {exc}"
    extra = f" ({len(outcome.problems)} picture(s) not drawn)" if outcome.problems else ""
    return f"report written to {outcome.page}{extra}"


def _with_test_record(best: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The best result with the test figures that retrain-best recorded in its JSON file, if any."""
    if best.get("test"):
        return best
    path = Path(settings.results_dir) / f"{best.get('model_name')}{res.RESULT_SUFFIX}"
    try:
        test = json.loads(path.read_text()).get("test") if path.is_file() else None
    except (OSError, ValueError):
        test = None
    return {**best, "test": test} if test else best


def _notice(frame: pd.DataFrame, source: str) -> str | None:
    where = f" in {source}" if source else ""
    if frame.empty:
        return (f"No finished trial{where}: there is nothing to report yet. Run a search "
                "(python -m hks search), or point --from at a results.pkl, a results folder or a store URL.")
    if frame[ACCURACY].notna().sum() == 0:
        return (f"All {len(frame)} trial(s){where} failed, so there is no accuracy to plot; "
                "their errors are listed below.")
    return None


def _summary(frame: pd.DataFrame, results: Sequence[dict[str, Any]], source: str) -> list[str]:
    lines = [f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')}" + (f" from {source}" if source else "") + "."]
    if frame.empty:
        return lines
    failed = int((frame["status"] != res.STATUS_OK).sum())
    lines.append(f"{len(frame)} trial(s): {len(frame) - failed} succeeded, {failed} failed; "
                 f"{frame['train_seconds'].sum() / 60:.1f} minutes of training in all.")
    best = res.best_result(results)
    if best:
        lines.append(f"Best: {best.get('model_name')} (trial {trial_number(best.get('tid'))}), "
                     f"validation fine accuracy {-best['loss']:.4f}" + _coarse_text(best) + ".")
    return lines


def trial_number(tid: Any) -> str:
    """Trials are numbered from 1 on the page, as in the search's progress lines (hyperopt's tid + 1)."""
    try:
        return str(int(tid) + 1)
    except (TypeError, ValueError):
        return "?"


def _coarse_text(result: dict[str, Any]) -> str:
    coarse = result.get("coarse_best_accuracy")
    return f", validation coarse accuracy {coarse:.4f}" if isinstance(coarse, (int, float)) else ""


def _attempt(title: str, draw: Callable[[], Path | None], caption: str, outcome: ReportOutcome,
             empty_reason: str = "nothing to draw") -> Picture:
    """Draw one picture; a failure becomes the picture's one-line problem."""
    try:
        path = draw()
    except Exception as exc:  # noqa: BLE001 - one bad picture must not cost the page
        problem = f"could not be drawn ({type(exc).__name__}: {exc})"
        outcome.problems.append(f"{title}: {problem}")
        return Picture(title, problem=problem)
    if path is None:
        return Picture(title, problem=empty_reason)
    outcome.pictures.append(path)
    return Picture(title, path, caption)


def _success_sections(results: Sequence[dict[str, Any]], frame: pd.DataFrame, best: dict[str, Any],
                      settings: Settings, folder: Path, outcome: ReportOutcome) -> list[Section]:
    columns = param_columns(frame)
    no_params = "no hyperparameter varied between the trials"
    history = Section("history", "Optimisation history", pictures=[_attempt(
        "Optimisation history", lambda: figures.optimisation_history(frame, folder / "history.png"),
        "Each trial's best validation fine accuracy (dots) and the best so far (red), against the trial "
        "number and against wall-clock time.", outcome)])
    importance = compute_importance(frame, columns, seed=settings.seed)
    importance_section = Section("importance", "Hyperparameter importance",
                                 paragraphs=[importance.method, importance.note],
                                 pictures=[_attempt("Importance", lambda: figures.importance_bars(
                                     importance, folder / "importance.png"), "", outcome)] if importance.scores
                                 else [],
                                 tables=[Table(("hyperparameter", "importance (R\u00b2 drop)", "std"),
                                               importance.scores)] if importance.scores else [])
    matrix = Section("scatter", "Scatter-plot matrix of tried hyperparameters", pictures=[_attempt(
        "Scatter-plot matrix",
        lambda: figures.scatter_matrix(frame, columns, folder / "scatter_matrix.png") if columns else None,
        "Lower triangle: each pair of hyperparameters, one dot per trial coloured by validation fine accuracy; "
        "diagonal: how often each value was tried. Categorical values are spread slightly to stay visible; "
        "None (layer absent) is a category of its own.", outcome, no_params)])
    curves = Section("curves", "Learning curves", pictures=[_attempt(
        "Learning curves", lambda: figures.learning_curves(results, folder / "learning_curves.png"),
        "Validation accuracy after each epoch, one line per trial, coloured by the trial's best validation "
        "fine accuracy.", outcome)])
    parallel = Section("parallel", "Parallel coordinates and slices", pictures=[
        _attempt("Parallel coordinates",
                 lambda: figures.parallel_coordinates(frame, columns, folder / "parallel.png") if columns else None,
                 "One line per trial across every varied hyperparameter, ending at its accuracy.", outcome,
                 no_params),
        _attempt("Slice plots",
                 lambda: figures.slice_plots(frame, columns, folder / "slices.png") if columns else None,
                 "Validation fine accuracy against each hyperparameter on its own.", outcome, no_params)])
    picture = _architecture(best, settings, folder, outcome) if settings.plots else Picture(
        "Architecture", problem="not drawn (plots are off: --no-plots / HKS_PLOTS=0)")
    architecture = Section("architecture", "Architecture of the best model", pictures=[picture])
    return [_best_section(best), history, importance_section, matrix, curves, parallel, _top_section(frame),
            architecture]


def _best_section(best: dict[str, Any]) -> Section:
    rows = _test_rows(best.get("test")) + [
        ("validation fine accuracy", -best["loss"]), ("validation coarse accuracy", best.get("coarse_best_accuracy")),
        ("epochs run (best epoch)", f"{best.get('epochs_run')} ({best.get('best_epoch')})"),
        ("parameters", best.get("params")), ("training seconds", best.get("train_seconds")),
        ("dataset", best.get("dataset")), ("seed", best.get("seed"))]
    rows = [(name, value) for name, value in rows if value is not None]
    paragraphs = [f"{best.get('model_name')}, trial {trial_number(best.get('tid'))}."]
    if not best.get("test"):
        paragraphs.append("Its test accuracy is not measured yet: python -m hks retrain-best retrains it on "
                          "train + validation and evaluates it once on the test set.")
    space = Table(("hyperparameter", "value"), sorted(flatten_point(best.get("space") or {}).items()))
    return Section("best", "Best model", paragraphs, [], [Table(("figure", "value"), rows), space])


def _test_rows(test: Any) -> list[tuple[str, Any]]:
    """What retrain-best recorded: the honest test figures first."""
    if not isinstance(test, dict):
        return []
    when = test.get("retrained_at")
    return [("test fine accuracy", test.get("fine_accuracy")), ("test coarse accuracy", test.get("coarse_accuracy")),
            ("test images", test.get("test_images")),
            ("retrained on (images, epochs)", f"{test.get('train_images')}, {test.get('epochs')}"),
            ("retrained at", time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else None),
            ("saved model", test.get("model_file")), ("exported model", test.get("export_dir"))]


def _architecture(best: dict[str, Any], settings: Settings, folder: Path, outcome: ReportOutcome) -> Picture:
    from hks.data import spec_for

    path = folder / f"architecture_{best.get('model_name')}.png"
    title = "Architecture of the best model"
    if not path.is_file():
        try:
            spec = spec_for(best.get("dataset") or settings.dataset)
            from hks.plotting import plot_point

            problem = plot_point(best["space"], path, spec.num_fine, spec.num_coarse)
        except Exception as exc:  # noqa: BLE001 - the picture is a nicety
            problem = f"could not be drawn ({type(exc).__name__}: {exc})"
        if problem:
            outcome.problems.append(f"{title}: {problem}")
            return Picture(title, problem=problem)
    outcome.pictures.append(path)
    return Picture(title, path, "Layers of the best model, rebuilt from its hyperparameters (Keras plot_model).")


def _top_section(frame: pd.DataFrame) -> Section:
    ok = frame[frame[ACCURACY].notna()].sort_values(ACCURACY, ascending=False).head(TOP_TRIALS)
    params = sorted(c for c in frame.columns if c.startswith(PARAM_PREFIX))
    columns = ["rank", "trial", "val fine acc", "val coarse acc", "epochs", "params", "seconds", "model"]
    rows = [[rank, trial_number(r["tid"]), r[ACCURACY], r["coarse_accuracy"], r["epochs_run"], r["params"],
             r["train_seconds"], r["model_name"]] + [r[c] for c in params]
            for rank, (_, r) in enumerate(ok.iterrows(), start=1)]
    return Section("top", f"Top {len(ok)} trials", [], [], [Table(columns + [param_name(c) for c in params], rows)])


def _failed_section(frame: pd.DataFrame) -> Section:
    failed = frame[frame["status"] != res.STATUS_OK]
    rows = [[trial_number(r["tid"]), r["error_type"], r["error"], r["train_seconds"]] for _, r in failed.iterrows()]
    return Section("failed", f"Failed trials ({len(failed)})",
                   ["Each failed trial's error; the full traceback is in its JSON result."],
                   tables=[Table(("trial", "error type", "error", "seconds"), rows, wrap=("error",))])
