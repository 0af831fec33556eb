"""How a trial's function is called, and what its return value means.

hks's own objective (:func:`hks.objective.run_trial`) takes ``(point, settings, *, tid,
on_epoch, ...)`` and returns a result dict. A user's objective may be any function of a point
returning a number to minimise, or a result dict (``status`` and ``loss``, hyperopt's
convention); it receives only the keyword arguments it declares, so ``def f(point)`` works.
"""

from __future__ import annotations

import inspect
import math
import traceback
import uuid
from collections.abc import Callable
from typing import Any

from hks import results as res
from hks.errors import HksError

Objective = Callable[..., Any]
OPTIONAL_ARGUMENTS = ("settings", "tid", "on_epoch", "should_prune")


def accepted(function: Objective) -> set[str]:
    """The optional arguments (of :data:`OPTIONAL_ARGUMENTS`) that ``function`` declares."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return set(OPTIONAL_ARGUMENTS)
    return {name for name in OPTIONAL_ARGUMENTS if name in parameters}


def call_objective(function: Objective, point: dict[str, Any], **available: Any) -> dict[str, Any]:
    """Run the objective on a point; its own failure becomes a failed result (the search goes on)."""
    wanted = accepted(function)
    try:
        value = function(point, **{k: v for k, v in available.items() if k in wanted})
    except (KeyboardInterrupt, HksError):
        raise
    except Exception as exc:  # the objective's own failure is the trial's result
        return failed_result(point, exc, available.get("tid"))
    return as_result(value, point, available.get("tid"))


def as_result(value: Any, point: dict[str, Any], tid: int | None) -> dict[str, Any]:
    """A result dict from what an objective returned: a number (the loss) or a result dict."""
    if isinstance(value, dict):
        result = dict(value)
        if result.get("status") not in (res.STATUS_OK, res.STATUS_FAIL, res.STATUS_PRUNED):
            result.setdefault("status", res.STATUS_OK if "loss" in result else res.STATUS_FAIL)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = {"status": res.STATUS_OK, "loss": float(value)}
    else:
        result = {"status": res.STATUS_FAIL, "loss": None,
                  "error": f"the objective returned {type(value).__name__}, not a number or a result dict"}
    loss = result.get("loss")
    if result["status"] == res.STATUS_OK and not (isinstance(loss, (int, float)) and math.isfinite(loss)):
        result.update(status=res.STATUS_FAIL, error=result.get("error") or f"non-finite loss {loss!r}", loss=None)
    result.setdefault("space", point)
    result.setdefault("tid", tid)
    result.setdefault("model_name", default_model_name(result, tid))
    return result


def default_model_name(result: dict[str, Any], tid: int | None) -> str:
    if "fine_best_accuracy" in result:
        return res.make_model_name(result.get("fine_best_accuracy"))
    return f"trial_{tid if tid is not None else 'x'}_{uuid.uuid4().hex[:8]}"


def failed_result(point: dict[str, Any], exc: BaseException, tid: int | None) -> dict[str, Any]:
    return {"status": res.STATUS_FAIL, "loss": None, "space": point, "tid": tid,
            "model_name": res.make_model_name(None), "error": f"{type(exc).__name__}: {exc}"[:500],
            "error_type": type(exc).__name__, "traceback": traceback.format_exc(), "history": {}}
