"""Compose the report: a snapshot of the search -> table -> one interactive HTML page.

:func:`write_report` is what the search driver calls after every search and what ``python -m hks
report`` runs (again and again with ``--watch``, so that an open page shows a running search). A
picture that cannot be drawn becomes a one-line note in the page instead of an error, so a report
never stops a search and a partial report is still written.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from hks import results as res
from hks.config import Settings
from hks.progress import retrain_command
from hks.report import payload as pl
from hks.report.frame import ACCURACY_METRIC, SCORE, Metric, flatten_point, metric_of, param_columns, results_frame
from hks.report.html import Link, Picture, Section, Table, format_value, render_page, table_html
from hks.report.importance import compute_importance
from hks.report.snapshot import Snapshot, as_snapshot
from hks.store.urls import is_store_url, mask_url

REPORT_FILE = "report.html"
PICTURES_FOLDER = "report"
DEFAULT_REFRESH_SECONDS = 30.0
MAX_FAILED_ROWS = 100  # more failed trials are in the trials table (status 'fail')
CHANCE_MARGIN = 1.5  # a best accuracy below 1.5x chance is "at or near chance level"
TIED_ERRORS = 2.0  # trials within this many binomial standard errors of the best are not told apart
MAX_TIED_LISTED = 10


@dataclass
class ReportOutcome:
    """Where the page went and which pictures could not be drawn (and why)."""

    page: Path
    pictures: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    trials: int = 0
    succeeded: int = 0
    finished: bool = True


def write_report(results: Sequence[dict[str, Any]] | Snapshot, settings: Settings, *,
                 out_dir: str | Path | None = None, source: str = "",
                 refresh_seconds: float = DEFAULT_REFRESH_SECONDS) -> ReportOutcome:
    """Write ``<out_dir>/report.html`` (default: the results folder) for these results or this snapshot.

    A snapshot of a running search gives a page that reloads itself every ``refresh_seconds``.
    """
    out = Path(out_dir if out_dir is not None else settings.results_dir)
    snapshot = as_snapshot(results, experiment=settings.experiment_name)
    snapshot.experiment = snapshot.experiment or settings.experiment_name
    snapshot.dataset = snapshot.dataset or next(
        (r["dataset"] for r in snapshot.results if r.get("dataset")), settings.dataset)
    metric = metric_of(snapshot.results)
    frame = results_frame(snapshot.results, metric)
    ok_count = int(frame[SCORE].notna().sum()) if not frame.empty else 0
    outcome = ReportOutcome(out / REPORT_FILE, trials=len(snapshot.results), succeeded=ok_count,
                            finished=snapshot.finished)
    columns = param_columns(frame) if not frame.empty else []
    importance = compute_importance(frame, columns, seed=settings.seed)
    best = res.best_result(snapshot.results)
    best = _with_test_record(best, settings) if best else None
    cifar = metric == ACCURACY_METRIC  # else a custom objective's loss: no chance level, curves or CNN to draw
    ours = best is not None and cifar and _rebuildable(best)
    chance = chance_level(snapshot.dataset) if cifar else None
    sections = []
    if best:
        retrain = retrain_command(settings, source if is_store_url(source) else "") if ours else None
        sections.append(_best_section(best, chance, snapshot.dataset, snapshot.results, metric, retrain))
    if not frame.empty:
        sections += _chart_sections(ok_count, columns, metric)
    failed = frame[frame["status"] == res.STATUS_FAIL] if not frame.empty else frame
    if len(failed):
        sections.append(_failed_section(failed, snapshot.results, Path(settings.results_dir), out))
    if ours:
        sections.append(_architecture_section(best, settings, out / PICTURES_FOLDER, outcome))
    data = {"meta": {**pl.snapshot_meta(snapshot), "refresh_s": refresh_seconds, "chance": chance,
                     "experiment": snapshot.experiment, "dataset": snapshot.dataset, "metric": metric.label,
                     "metric_short": metric.short, "higher_better": metric.higher_better,
                     "best": pl.rounded(metric.of(best["loss"])) if best else None,
                     "best_n": int(best["tid"]) + 1 if best and isinstance(best.get("tid"), int) else None},
            "trials": pl.trials_payload(frame, snapshot.results, columns, Path(settings.results_dir), out),
            "pending": pl.pending_payload(snapshot.pending), "importance": pl.importance_payload(importance),
            "constant": pl.constant_settings(frame, columns)}
    title = f"{snapshot.experiment} \u2014 {snapshot.dataset}" if cifar else snapshot.experiment
    source = mask_url(source)  # a store URL's password never reaches the page
    page = render_page(f"{title}: hks search report", _summary(frame, snapshot, source, metric), sections,
                       notices=_notices(frame, source),
                       live=_live_panel(snapshot, refresh_seconds), data_json=pl.page_json(data))
    res.atomic_write_bytes(outcome.page, page.encode("utf-8"))
    return outcome


def _rebuildable(best: dict[str, Any]) -> bool:
    """Whether hks's own builders can rebuild the best model (not a ``keras_objective``'s)."""
    from hks.space import missing_keys  # imports hyperopt: only when a page has a best trial to draw

    return not missing_keys(best.get("space") or {})


def safe_write_report(results: Sequence[dict[str, Any]] | Snapshot, settings: Settings, **kwargs: Any) -> str:
    """:func:`write_report` for search drivers: returns a one-line message and never raises."""
    try:
        outcome = write_report(results, settings, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a report must never lose a finished search
        return f"report not written: {type(exc).__name__}: {exc}"
    extra = f" ({len(outcome.problems)} picture(s) not drawn)" if outcome.problems else ""
    return f"report written to {outcome.page}{extra}"


def chance_level(dataset: str) -> float | None:
    """The accuracy of guessing: 1 / number of fine classes (None for an unknown dataset)."""
    from hks.data import spec_for
    from hks.errors import DatasetError

    try:
        return 1.0 / spec_for(dataset).num_fine
    except DatasetError:
        return None


def chance_warning(accuracy: float, chance: float | None, dataset: str) -> str | None:
    """A warning when the "best" trial learned nothing: its accuracy is at or near guessing."""
    if chance is None or accuracy > CHANCE_MARGIN * chance:
        return None
    return (f"Warning: the best validation fine accuracy, {accuracy:.4f}, is at or near chance level "
            f"(1/{round(1 / chance)} = {chance:.4f} on {dataset}): no trial has learned anything yet. Check the "
            "learning rate (--base-lr), the data and the failed trials before retraining this one.")


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


def _notices(frame: pd.DataFrame, source: str) -> list[str]:
    where = f" in {source}" if source else ""
    if frame.empty:
        return [f"No finished trial{where}: there is nothing to report yet. Run a search "
                "(python -m hks search), or point --from at a results.pkl, a results folder or a store URL."]
    if frame[SCORE].notna().sum() == 0:
        return [f"All {len(frame)} trial(s){where} failed, so there is no score to plot; "
                "their errors are listed below."]
    return []


def _summary(frame: pd.DataFrame, snapshot: Snapshot, source: str, metric: Metric) -> list[str]:
    lines = [f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')}" + (f" from {source}" if source else "") + "."]
    if frame.empty:
        return lines
    counts = frame["status"].value_counts()
    pruned = int(counts.get(res.STATUS_PRUNED, 0))
    paused = sum(1 for r in snapshot.results if r.get("status") == res.STATUS_PRUNED and r.get("paused"))
    stopped = f", {pruned} pruned" + (f" ({paused} of them paused, which may resume)" if paused else "")
    budget = f" (budget {snapshot.budget})" if snapshot.budget else ""
    lines.append(f"{len(frame)} trial(s){budget}: {int(counts.get(res.STATUS_OK, 0))} succeeded, "
                 f"{int(counts.get(res.STATUS_FAIL, 0))} failed" + (stopped if pruned else "") +
                 f"; {frame['train_seconds'].sum() / 60:.1f} minutes of training in all.")
    best = res.best_result(snapshot.results)
    if best:
        lines.append(f"Best: {best.get('model_name')} (trial {trial_number(best.get('tid'))}), "
                     f"{metric.label} {metric.text(best['loss'])}" + _coarse_text(best) + ".")
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


def duration(seconds: float) -> str:
    """``2 h 05 min``, ``4 min 10 s`` or ``12 s``."""
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def _live_panel(snapshot: Snapshot, refresh_seconds: float) -> str:
    """The running search: budget, trials done, running and queued ones, time so far and left."""
    if snapshot.finished and not snapshot.pending:
        return ""
    done, budget = len(snapshot.results), snapshot.budget
    lines = [f"Search running: {done}/{budget if budget else '?'} trials done; {len(snapshot.running)} running, "
             f"{len(snapshot.queued)} queued."]
    if snapshot.started_at:
        left = snapshot.seconds_left()
        lines.append(f"Elapsed {duration(snapshot.taken_at - snapshot.started_at)}"
                     + (f"; about {duration(left)} left at the rate trials finished so far." if left is not None
                        else "; no time estimate before the first trial finishes."))
    lines.append(f"This page reloads itself every {refresh_seconds:g} s while the search runs.")
    rows = [[p.tid + 1, p.worker or "", p.epoch, p.val_accuracy,
             duration(snapshot.taken_at - p.started_at) if p.started_at else ""] for p in snapshot.running]
    table = Table(("trial", "worker", "epoch", "val fine acc (last epoch)", "running for"), rows)
    queued = ", ".join(str(p.tid + 1) for p in snapshot.queued[:50])
    more = f" and {len(snapshot.queued) - 50} more" if len(snapshot.queued) > 50 else ""
    parts = [f"<p>{html.escape(line)}</p>" for line in lines]
    if rows:
        parts.append(table_html(table))
    if queued:
        parts.append(f"<p>Queued: trial(s) {html.escape(queued + more)}.</p>")
    return f'<div id="live" class="live">{"".join(parts)}</div>'


def _best_section(best: dict[str, Any], chance: float | None, dataset: str,
                  results: Sequence[dict[str, Any]], metric: Metric, retrain: str | None) -> Section:
    """``retrain``: the command that retrains it (None: hks cannot rebuild its model, say your own builder's)."""
    rows = _test_rows(best.get("test")) + [
        (metric.label, metric.of(best["loss"])), ("validation coarse accuracy", best.get("coarse_best_accuracy")),
        ("validation images", best.get("val_images")),
        ("epochs run (best epoch)", f"{best['epochs_run']} ({best.get('best_epoch')})" if best.get("epochs_run")
         else None),
        ("parameters", best.get("params")), ("training seconds", best.get("train_seconds")),
        ("dataset", best.get("dataset")), ("seed", best.get("seed"))]
    rows = [(name, value) for name, value in rows if value is not None]
    paragraphs = [f"{best.get('model_name')}, trial {trial_number(best.get('tid'))}."]
    precision = precision_note(best, results)
    if precision:
        paragraphs.append(precision)
    if not best.get("test") and retrain:
        paragraphs.append(f"Its test accuracy is not measured yet: {retrain} retrains it on "
                          "train + validation and evaluates it once on the test set.")
    space = Table(("hyperparameter", "value"), sorted(flatten_point(best.get("space") or {}).items()))
    return Section("best", "Best model", paragraphs, [], [Table(("figure", "value"), rows), space],
                   warning=chance_warning(-best["loss"], chance, dataset))


def precision_note(best: dict[str, Any], results: Sequence[dict[str, Any]]) -> str | None:
    """How precisely the validation set measures the best accuracy, and which trials it cannot tell from it.

    A validation accuracy is a proportion over a finite set: its binomial standard error alone is about
    0.007 on 5,000 images at 40 %, as large as the gaps between the best few trials of a long search, so
    the winner may be the luckiest of several equals (and another training seed adds its own spread).
    None when the result does not record its validation set's size (results older than this field)."""
    images, accuracy = best.get("val_images"), -best["loss"]
    if not isinstance(images, int) or images <= 0:
        return None
    error = math.sqrt(max(accuracy * (1 - accuracy), 0.0) / images)
    text = (f"Measured on {images:,} validation images, its validation fine accuracy is uncertain by about "
            f"\u00b1{error:.4f} (one binomial standard error), before any spread between training runs.")
    tied = sorted((r for r in res.succeeded(results) if -r["loss"] >= accuracy - TIED_ERRORS * error
                   and r.get("model_name") != best.get("model_name")),  # best may be a copy with its test record
                  key=lambda r: r["loss"])
    if tied:
        listed = ", ".join(f"{trial_number(r.get('tid'))} ({-r['loss']:.4f})" for r in tied[:MAX_TIED_LISTED])
        more = f" and {len(tied) - MAX_TIED_LISTED} more" if len(tied) > MAX_TIED_LISTED else ""
        text += (f" {len(tied)} other trial(s) are within {TIED_ERRORS:g} standard errors of it, so the validation "
                 f"set cannot tell them apart: trial(s) {listed}{more}. The test figure of retrain-best is the one "
                 "to trust.")
    return text


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


def _chart(anchor: str, caption: str, css: str = "chart") -> str:
    return f'<div id="{anchor}-chart" class="{css}"></div><p class="caption">{html.escape(caption)}</p>'


def _chart_sections(ok_count: int, columns: list[str], metric: Metric) -> list[Section]:
    """Containers the page's script fills; hover any point for its trial, drag to zoom, double-click to reset."""
    sections = [
        Section("history", "Optimisation history", charts=_chart(
            "history", f"Each trial's {_best_word(metric)} {metric.label} (dots, coloured by it), the best so far "
            "(line), pruned trials (orange triangles, at the best they reached) and failed ones (grey crosses, at "
            f"{'0' if metric.higher_better else 'the worst loss'}). "
            "Hover a point for its trial, click it to open the trial below; drag to zoom, double-click to reset.")),
        Section("trials", "All trials", charts=(
            '<div class="controls"><input id="trial-filter" type="search" placeholder="filter: text in any cell" '
            'aria-label="filter the trials"><select id="trial-status" aria-label="status"><option value="">'
            'every status</option><option>ok</option><option>fail</option><option>pruned</option>'
            '<option>running</option><option>queued</option></select><span id="trial-count"></span>'
            '<button id="trial-clear" type="button" hidden>clear the parallel-coordinates selection</button></div>'
            '<div class="scroll"><table id="trial-table" class="sortable"><thead></thead><tbody></tbody></table>'
            '</div><div class="controls" id="trial-pages"></div>'
            '<p class="caption">Click a column heading to sort (again to reverse), a row to open its trial.</p>'
            '<h3 id="selected-title">Selected trial</h3><div class="pair">'
            '<div id="selected-loss" class="chart small"></div><div id="selected-acc" class="chart small"></div>'
            '</div><div class="scroll"><table id="selected-settings"></table></div>')),
    ]
    if metric == ACCURACY_METRIC:  # a custom objective records no epochs
        sections.append(Section("curves", "Learning curves", charts=_chart(
            "curves", "Validation fine accuracy after each epoch: the best trials (blue), running trials "
            "(orange, so far), pruned trials (ending in an orange cross) and the selected trial (red).")))
    if not ok_count or not columns:
        return sections
    return sections + [
        Section("parallel", "Parallel coordinates", charts=(
            '<div class="wide-scroll"><div id="parallel-chart" class="chart tall"></div></div>'
            '<p class="caption">One line per successful trial across every varied hyperparameter, ending at its '
            f'{metric.short}. Drag along an axis to keep only the trials in that range (several axes combine); the '
            'trials table then lists just those trials. Click a range to remove it.</p>')),
        Section("slices", f"Slices: {metric.short} against each hyperparameter", charts=(
            '<div id="slices-grid" class="grid"></div><p class="caption">Each varied hyperparameter on its own; '
            'categories are spread a little so that trials on the same value stay visible; None (layer absent) '
            'is a category of its own.</p>')),
        Section("pairs", "Two hyperparameters", charts=(
            '<div class="controls"><label>x <select id="pair-x"></select></label>'
            '<label>y <select id="pair-y"></select></label></div>' + _chart(
                "pair", f"Each successful trial at its two values, coloured by {metric.label}."))),
        Section("importance", "Hyperparameter importance", charts=_chart("importance", ""), paragraphs=[]),
    ]


def _best_word(metric: Metric) -> str:
    """A CIFAR trial's score is the best epoch's accuracy; a custom objective's, the loss it returned."""
    return "best" if metric == ACCURACY_METRIC else "returned"


def _failed_section(failed: pd.DataFrame, results: Sequence[dict[str, Any]], results_dir: Path,
                    out: Path) -> Section:
    rows = []
    for _, r in failed.head(MAX_FAILED_ROWS).iterrows():
        result = results[int(r["index"])]
        link = pl.json_link(result, results_dir, out)
        settings = "; ".join(f"{k}={format_value(v)}" for k, v in sorted(flatten_point(result.get("space") or {})
                                                                            .items()))
        seconds = r["train_seconds"] if pd.notna(r["train_seconds"]) else ""  # a custom objective may not say
        rows.append([trial_number(r["tid"]), r["error_type"], r["error"], settings, seconds,
                     Link(link, Path(link).name) if link else "not in the results folder"])
    more = (f" The first {MAX_FAILED_ROWS} are listed; pick the status 'fail' in the trials table for all of them."
            if len(failed) > MAX_FAILED_ROWS else "")
    return Section("failed", f"Failed trials ({len(failed)})",
                   ["Each failed trial's settings and error; the full traceback is in its JSON result." + more],
                   tables=[Table(("trial", "error type", "error", "settings", "seconds", "JSON result"), rows,
                                 wrap=("error", "settings"))])


def _architecture_section(best: dict[str, Any], settings: Settings, folder: Path,
                          outcome: ReportOutcome) -> Section:
    picture = _architecture(best, settings, folder, outcome) if settings.plots else Picture(
        "Architecture", problem="not drawn (plots are off: --no-plots / HKS_PLOTS=0)")
    return Section("architecture", "Architecture of the best model", pictures=[picture])


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
