"""What a search *is*: the settings, space and objective code that give its scores their meaning.

Resuming a search with another validation fraction, dataset size, seed (it draws the validation
split), augmentation, epoch budget, space or objective code would mix trials scored on different
things in one ``results.pkl`` or store experiment. The identity below is saved with the
experiment and compared on every resume; a mismatch is refused with one line naming the setting,
the saved value and the new one, and nothing is written. Settings outside the identity (budget,
workers, plots, threads, the algorithm) may change between runs.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from typing import Any

from hks.config import IDENTITY_SETTINGS, Settings, flag_name
from hks.errors import ConfigError
from hks.space import fingerprint
from hks.store import is_store_url, mask_url
from hks.store import protocol as p

IDENTITY_KEY = "identity"


def code_fingerprint(function: Callable[..., Any]) -> str:
    """A hash of the objective's code. hks's own objectives: their module's source. A user's: the
    function's own source and that of what it uses from its module (functions, classes, plain
    constants), so that editing the rest of the script (its budget, its prints) does not make it
    another search; a ``keras_objective`` is its builder's code. Without source: the bytecode."""
    from hks.evaluation import keras_objective

    if isinstance(function, functools.partial):  # its function, and the arguments bound to it
        text = f"{code_fingerprint(function.func)}{function.args!r}{sorted(function.keywords.items())!r}"
        return _digest(text)
    target = function.build if isinstance(function, keras_objective) else function
    module = inspect.getmodule(target)
    try:
        if module is not None and module.__name__.split(".")[0] == "hks":
            text = inspect.getsource(module)
        else:
            text = "\n".join(_own_code(target, set()))
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        text = repr((code.co_code, code.co_consts)) if code is not None else repr(target)
    return _digest(text)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


PLAIN = (int, float, complex, str, bytes, bool, type(None), tuple, frozenset)


def _own_code(item: Any, seen: set[int]) -> list[str]:
    """The source of ``item`` and, recursively, of the functions and classes of its module it names,
    with the values of the plain constants it names."""
    if id(item) in seen:
        return []
    seen.add(id(item))
    parts = [inspect.getsource(item)]
    names = _names(item.__code__) if hasattr(item, "__code__") else set()
    scope = getattr(item, "__globals__", None) or vars(inspect.getmodule(item) or object)
    for name in sorted(names):
        value = scope.get(name) if isinstance(scope, dict) else None
        if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == item.__module__:
            parts += _own_code(value, seen)
        elif isinstance(value, PLAIN):
            parts.append(f"{name} = {value!r}")
    return parts


def _names(code: Any) -> set[str]:
    """The global names a code object (and the functions and comprehensions inside it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _names(const)
    return names


def identity(settings: Settings, space: Any, objective: Callable[..., Any]) -> dict[str, Any]:
    ident: dict[str, Any] = {name: getattr(settings, name) for name in IDENTITY_SETTINGS}
    ident["space_fingerprint"] = fingerprint(space)
    ident["objective_fingerprint"] = code_fingerprint(objective)
    return ident


def _describe(key: str) -> str:
    return {"space_fingerprint": "search space code", "objective_fingerprint": "objective code"}.get(
        key, flag_name(key))


def check_identity(saved: dict[str, Any], mine: dict[str, Any], where: str, new_search: str) -> None:
    """Refuse to resume when anything that changes what a score means differs; the space and objective
    (names, then code) first, since they make it another search whatever the settings say.
    ``new_search``: the flags that start one beside it."""
    first = ("space", "objective", "space_fingerprint", "objective_fingerprint")
    for key in sorted(mine, key=lambda key: first.index(key) if key in first else len(first)):
        if key in saved and saved[key] != mine[key]:
            raise ConfigError(
                f"{where} was made with {_describe(key)} {saved[key]!r}, but this run has {mine[key]!r}: its trials "
                f"were scored differently. Use the same value to resume it, or start a new search ({new_search}); "
                "nothing was changed")


def register(store: p.JobStore, settings: Settings, space: Any, objective: Callable[..., Any]) -> p.Experiment:
    """Create the experiment record, or check that a resumed one is the same search."""
    mine = identity(settings, space, objective)
    recorded = {**settings.to_dict(), "store": mask_url(settings.store), IDENTITY_KEY: mine}
    experiment = p.Experiment(settings.experiment_name, mine["space_fingerprint"], settings.space,
                              settings.objective, recorded)
    saved = store.get_experiment(experiment.exp_key)
    if saved is not None:
        new_search = ("another --experiment-name" if is_store_url(store.url)
                      else "another --trials-file and --results-dir")
        check_identity(saved.settings.get(IDENTITY_KEY) or saved.settings, mine,
                       f"experiment {experiment.exp_key!r} in {store.url}", new_search)
        experiment.created_at = saved.created_at
    store.put_experiment(experiment)
    return experiment
