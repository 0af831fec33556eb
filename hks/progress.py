"""What a search prints: a line when a trial starts, one per epoch, one when it ends, and the time.

Shared by every search driver (local TPE, distributed master, Ax GP) and by the objective, so users
see the same thing whichever way the search runs. Trials are numbered from 1 here as everywhere a
user reads them (hyperopt's ``tid`` + 1).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TextIO

from hks.results import best_result

EPOCH_KEYS = ("loss", "val_loss", "fine_accuracy", "val_fine_accuracy", "val_coarse_accuracy")
_worker_label = "local"


def set_worker_label(label: str) -> None:
    """Name this process in trial start lines (a distributed worker passes its id)."""
    global _worker_label
    _worker_label = label


def format_duration(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h04m``: short enough for a progress line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def trials(count: int) -> str:
    """``1 trial``, ``2 trials``."""
    return f"{count} trial{'' if count == 1 else 's'}"


def trial_number(tid: int | None) -> str:
    return "?" if tid is None else str(int(tid) + 1)


def describe_point(point: Mapping[str, Any]) -> str:
    """The main values of a classic- or modern-space point in a few words; other spaces show their first keys."""
    if point.get("architecture") == "resnet":
        return _describe_modern(point)
    if not {"optimizer", "batch_size", "nb_conv_pool_layers"} <= set(point):
        return ", ".join(f"{k} {_short(v)}" for k, v in list(point.items())[:6])
    from hks.space import SPACE

    # --algo gp sets the optimizer's own arguments (learning_rate, momentum...) beside the architecture
    extras = [f"{k} {_short(v)}" for k, v in point.items() if k not in SPACE]
    rate = [] if "learning_rate" in point else [f"lr x{_short(point.get('lr_rate_mult'))}"]
    words = [str(point["optimizer"]), *rate, *extras, f"batch {_short(point['batch_size'])}",
             f"{_short(point['nb_conv_pool_layers'])} conv blocks ({point.get('pooling_type')})"]
    if point.get("residual") is not None:
        words.append(f"{_short(point['residual'])} residual")
    if point.get("use_BN"):
        words.append("BN")
    words.append(str(point.get("activation")))
    return ", ".join(words)


def _describe_modern(point: Mapping[str, Any]) -> str:
    """``resnet width 32, depth 2, SGD lr 0.1 wd 0.0005, one_cycle, batch 128, cutout 8``."""
    optimizer = point.get("optimizer") or {}
    words = [f"resnet width {point.get('width')}, depth {point.get('depth')}",
             f"{optimizer.get('name')} lr {_short(optimizer.get('learning_rate'))} "
             f"wd {_short(optimizer.get('weight_decay'))}", str(point.get("schedule")),
             f"batch {_short(point.get('batch_size'))}"]
    if point.get("cutout"):
        words.append(f"cutout {point['cutout']}")
    return ", ".join(words)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def trial_start_line(tid: int | None, budget: int, point: Mapping[str, Any], *, worker: str | None = None,
                     params: int | None = None) -> str:
    """``trial 4/30 started on local: Nadam, lr x1.2, ...; 1,234,567 parameters``."""
    size = f"; {params:,} parameters" if params is not None else ""
    return f"trial {trial_number(tid)}/{budget} started on {worker or _worker_label}: {describe_point(point)}{size}"


def epoch_line(epoch: int, epochs: int, logs: Mapping[str, float], seconds: float) -> str:
    """One epoch: training and validation loss, accuracies, and how long it took."""
    shown = "  ".join(f"{k} {logs[k]:.4f}" for k in EPOCH_KEYS if k in logs)
    return f"    epoch {epoch + 1}/{epochs}  {shown}  ({seconds:.1f}s)"


def budget_spent_line(done: int, budget: int) -> str:
    return (f"nothing to run: {done} trials are done and --max-evals (HKS_MAX_EVALS) is {budget}; "
            f"it counts every trial so far, so pass --max-evals {done + 10} (say) to run 10 more")


def retrain_command(settings: Any, store: str = "") -> str:
    """The retrain-best command line, with the flags that find this search's results and data (a store's
    search is read from its JSON results folder, which does not record which images the trials saw)."""
    from hks.config import SEARCH_DATA_SETTINGS, Settings, as_flags

    defaults = Settings()
    command = ["python", "-m", "hks", "retrain-best"]
    if store:
        command += ["--from", settings.results_dir]
    names = ["data_dir", "results_dir"] + ([*SEARCH_DATA_SETTINGS] if store else ["trials_file"])
    command += as_flags(settings, [name for name in names if getattr(settings, name) != getattr(defaults, name)])
    return shlex.join(command)


def next_step_line(settings: Any, store: str = "") -> str:
    """What to do after a search: retrain the winner (:func:`retrain_command`)."""
    return (f"next: {retrain_command(settings, store)}  (retrains the best on train + validation and tests it "
            "once; python -m hks report shows every trial)")


class SearchProgress:
    """Counts finished trials against the budget and tells the time: elapsed, and an estimate of what is left."""

    def __init__(self, budget: int, previous: Iterable[dict[str, Any]] = (), stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.budget = budget
        self.results: list[dict[str, Any]] = list(previous)
        self.resumed_with = len(self.results)
        self.clock = clock
        self.started = clock()
        self.stream = stream
        self._announced: set[tuple[int, str | None]] = set()

    @property
    def best(self) -> dict[str, Any] | None:
        return best_result(self.results)

    @property
    def spent(self) -> bool:
        return len(self.results) >= self.budget

    def describe_start(self) -> str:
        done = len(self.results)
        best = self.best
        best_text = f", best so far {score_text(best)}" if best else ""
        if self.spent:
            return budget_spent_line(done, self.budget)
        if not done:
            return f"starting search: {trials(self.budget)}"
        return f"resuming search: {done}/{self.budget} trials done{best_text}"

    def announce_start(self, tid: int, point: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
                       worker: str | None) -> str | None:
        """Print a trial's start line once per (trial, worker) (the master polls running trials)."""
        if (tid, worker) in self._announced:
            return None
        self._announced.add((tid, worker))
        line = trial_start_line(tid, self.budget, point() if callable(point) else point, worker=worker)
        print(line, file=self.stream, flush=True)
        return line

    def elapsed(self) -> float:
        return self.clock() - self.started

    def time_left(self) -> float | None:
        """Seconds left at this session's pace so far (which counts parallel workers); None before a trial ends."""
        finished = len(self.results) - self.resumed_with
        if finished <= 0:
            return None
        return self.elapsed() / finished * max(0, self.budget - len(self.results))

    def describe_time(self) -> str:
        left = self.time_left()
        left_text = "" if left is None else (", done" if left == 0 else f", ~{format_duration(left)} left")
        return f"{format_duration(self.elapsed())} elapsed{left_text}"

    def forget(self, tid: int) -> None:
        """A paused trial resumes: its result goes until it finishes again, and its start is shown again."""
        self.results = [r for r in self.results if r.get("tid") != tid]
        self._announced = {(t, worker) for t, worker in self._announced if t != tid}

    def record(self, result: dict[str, Any]) -> str:
        """Add a finished trial and return (and print) its progress line."""
        self.results.append(result)
        line = self.format_line(result)
        print(line, file=self.stream, flush=True)
        return line

    def format_line(self, result: dict[str, Any]) -> str:
        done = len(self.results)
        if result.get("status") == "pruned":
            outcome = (f"{'paused' if result.get('paused') else 'pruned'} at epoch {result.get('pruned_at_epoch')} "
                       f"(val fine acc {result.get('fine_best_accuracy') or 0:.4f})")
        elif result.get("status") == "ok" and result.get("fine_best_accuracy") is None:
            outcome = f"loss {result['loss']:.6g}"
        elif result.get("status") == "ok":
            epochs = result.get("epochs_run", "?")
            outcome = f"val fine acc {result['fine_best_accuracy']:.4f} in {epochs} epoch{'' if epochs == 1 else 's'}"
        else:
            outcome = f"FAILED ({result.get('error', 'unknown error')})"
        best = self.best
        best_text = f"best {score_text(best)} ({best['model_name']})" if best else "no success yet"
        seconds = result.get("train_seconds")
        took = f" [{seconds:.1f}s]" if isinstance(seconds, (int, float)) else ""
        number = trial_number(result.get("tid")) if result.get("tid") is not None else str(done)
        which = f" (trial #{number})" if number != str(done) else ""  # workers may finish out of order
        return f"trial {done}/{self.budget}: {outcome}{took}{which} | {best_text} | {self.describe_time()}"


def score_text(result: dict[str, Any]) -> str:
    """A result's score as people read it: validation fine accuracy for hks's CNN, else the loss."""
    accuracy = result.get("fine_best_accuracy")
    return f"{accuracy:.4f}" if accuracy is not None else f"loss {result['loss']:.6g}"
