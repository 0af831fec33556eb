"""What a search *is*: the settings, space and objective code that give its scores their meaning.

Resuming a search with another validation fraction, dataset size, seed (it draws the validation
split), augmentation, epoch budget, space or objective code would mix trials scored on different
things in one ``results.pkl`` or store experiment. The identity below is saved with the
experiment and compared on every resume; a mismatch is refused with one line naming the setting,
the saved value and the new one, and nothing is written. Settings outside the identity (budget,
workers, plots, threads, the algorithm) may change between runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hks.code_identity import code_fingerprint
from hks.config import IDENTITY_SETTINGS, Settings, flag_name
from hks.errors import ConfigError
from hks.space import fingerprint
from hks.store import is_store_url, mask_url
from hks.store import protocol as p

IDENTITY_KEY = "identity"


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
