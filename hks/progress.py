"""One progress line per finished trial: trials done / budget, this trial, best so far.

Shared by every search driver (local TPE, distributed master, Ax GP) so users see the same
thing whichever way the search runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from hks.results import best_result


class SearchProgress:
    def __init__(self, budget: int, previous: Iterable[dict[str, Any]] = (), stream=None):
        self.budget = budget
        self.results: list[dict[str, Any]] = list(previous)
        self.started = time.perf_counter()
        self.stream = stream

    @property
    def best(self) -> dict[str, Any] | None:
        return best_result(self.results)

    def describe_start(self) -> str:
        done = len(self.results)
        if not done:
            return f"starting search: {self.budget} trials"
        best = self.best
        best_text = f", best so far {score_text(best)}" if best else ""
        return f"resuming search: {done}/{self.budget} trials done{best_text}"

    def record(self, result: dict[str, Any]) -> str:
        """Add a finished trial and return (and print) its progress line."""
        self.results.append(result)
        line = self.format_line(result)
        print(line, file=self.stream, flush=True)
        return line

    def format_line(self, result: dict[str, Any]) -> str:
        done = len(self.results)
        if result.get("status") == "pruned":
            outcome = (f"pruned at epoch {result.get('pruned_at_epoch')} (val fine acc "
                       f"{result.get('fine_best_accuracy') or 0:.4f})")
        elif result.get("status") == "ok" and result.get("fine_best_accuracy") is None:
            outcome = f"loss {result['loss']:.6g}"
        elif result.get("status") == "ok":
            outcome = f"val fine acc {result['fine_best_accuracy']:.4f} in {result.get('epochs_run', '?')} epochs"
        else:
            outcome = f"FAILED ({result.get('error', 'unknown error')})"
        best = self.best
        best_text = f"best {score_text(best)} ({best['model_name']})" if best else "no success yet"
        seconds = result.get("train_seconds")
        took = f" [{seconds:.1f}s]" if isinstance(seconds, (int, float)) else ""
        return f"trial {done}/{self.budget}: {outcome}{took} | {best_text}"


def score_text(result: dict[str, Any]) -> str:
    """A result's score as people read it: validation fine accuracy for hks's CNN, else the loss."""
    accuracy = result.get("fine_best_accuracy")
    return f"{accuracy:.4f}" if accuracy is not None else f"loss {result['loss']:.6g}"
