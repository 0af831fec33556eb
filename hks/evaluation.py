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
KEYWORD_ARGUMENTS = ("tid", "on_epoch", "should_prune", "checkpoint")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def accepted(function: Objective) -> tuple[bool, set[str]]:
    """Whether ``function`` takes the settings as its second positional argument (one not named like
    one of :data:`KEYWORD_ARGUMENTS`: ``def f(point, tid)`` takes the trial id), and which of those it
    declares (all of them with ``**kwargs``)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return False, set()
    positional = [p for p in parameters if p.kind in _POSITIONAL]
    takes_settings = (len(positional) >= 2 and positional[1].name not in KEYWORD_ARGUMENTS) or any(
        p.kind is inspect.Parameter.VAR_POSITIONAL for p in parameters)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return takes_settings, set(KEYWORD_ARGUMENTS)
    return takes_settings, {p.name for p in parameters if p.name in KEYWORD_ARGUMENTS}


def call_objective(function: Objective, point: dict[str, Any], settings: Any = None,
                   **available: Any) -> dict[str, Any]:
    """Run the objective on a point; its own failure becomes a failed result (the search goes on)."""
    takes_settings, wanted = accepted(function)
    args = (point, settings) if takes_settings else (point,)
    try:
        value = function(*args, **{k: v for k, v in available.items() if k in wanted})
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


class keras_objective:  # noqa: N801 - used like a function: hks.keras_objective(build)
    """An objective that trains your Keras model builder the way hks trains its own CNN.

    ``build(point, num_fine, num_coarse)`` returns a compiled model with a ``fine`` softmax head (and a
    ``coarse`` one when ``num_coarse`` is not None); hks feeds it the dataset through ``tf.data``, stops
    early, records per-epoch values and prunes like any trial. For workers, make it importable by
    name: ``objective = hks.keras_objective(build)`` in a module, then ``objective="module:objective"``.
    """

    def __init__(self, build: Callable[..., Any]):
        self.build = build
        self.__module__ = build.__module__  # the identity of the search is the builder's code
        self.__qualname__ = f"keras_objective({build.__qualname__})"

    def __call__(self, point: dict[str, Any], settings: Any, *, tid: int | None = None, **kwargs: Any):
        from hks.objective import run_trial

        wanted = accepted(run_trial)[1]
        return run_trial(point, settings, tid=tid, build=self.build, **{k: v for k, v in kwargs.items()
                                                                         if k in wanted})
