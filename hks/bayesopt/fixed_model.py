"""The fixed architecture that ``--algo gp`` trains, and how a flat point configures it.

A GP models a flat space of training hyperparameters, so the architecture is held fixed at
:func:`hks.space.demo_point` trained with SGD. A flat point's keys that belong to the classic
space override that architecture; every other key (``learning_rate``, ``momentum``,
``weight_decay``, ...) is a keyword argument of the Keras optimizer named by ``optimizer``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hks import space as sp
from hks.bayesopt.flat import Choice, FlatSpace, representative
from hks.errors import SpaceError
from hks.model import build_model, make_optimizer

if TYPE_CHECKING:
    import keras

    from hks.config import Settings

OPTIMIZER = "SGD"
FIXED_OBJECTIVE = "hks.bayesopt.fixed_model:run_fixed_trial"  # what --algo gp trains, by name for workers


def fixed_architecture() -> dict[str, Any]:
    """The classic demo architecture, trained with SGD unless the flat space picks an optimizer."""
    return {**sp.demo_point(), "optimizer": OPTIMIZER}


def full_point(flat_point: dict[str, Any]) -> dict[str, Any]:
    """What a trial trains (and what its JSON ``space`` field holds): architecture plus flat point."""
    return {**fixed_architecture(), **flat_point}


def split_point(point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(architecture keys, optimizer keyword arguments) of a full point."""
    architecture = {k: v for k, v in point.items() if k in sp.SPACE}
    optimizer_args = {k: v for k, v in point.items() if k not in sp.SPACE}
    return architecture, optimizer_args


def make_point_optimizer(point: dict[str, Any], base_lr: float = sp.BASE_LEARNING_RATE) -> keras.optimizers.Optimizer:
    """The optimizer of a full point; without ``learning_rate`` it is ``base_lr`` times the multiplier."""
    architecture, kwargs = split_point(point)
    rate = kwargs.pop("learning_rate", base_lr * architecture["lr_rate_mult"])
    return make_optimizer(architecture["optimizer"], rate, **kwargs)


def build_fixed(point: dict[str, Any], num_fine: int = 100, num_coarse: int | None = 20, *,
                base_lr: float = sp.BASE_LEARNING_RATE) -> keras.Model:
    """A compiled model of a full point: ``build_model`` then recompiled with the point's optimizer."""
    import keras

    architecture, kwargs = split_point(point)
    model = build_model(architecture, num_fine, num_coarse, base_lr=base_lr)
    if kwargs:
        config = model.get_compile_config()
        config["optimizer"] = keras.optimizers.serialize(make_point_optimizer(point, base_lr))
        model.compile_from_config(config)
    return model


def check_space(space: FlatSpace, origin: str) -> None:
    """Fail before any training when a key is neither a classic-space key nor an optimizer argument.

    Every value of every choice is tried once (e.g. each optimizer class against the other keys).
    """
    base = representative(space)
    variants = [base] + [{**base, name: value} for name, p in space.items() if isinstance(p, Choice)
                         for value in p.values[1:]]
    for flat_point in variants:
        point = full_point(flat_point)
        try:
            make_point_optimizer(point)
        except SpaceError:
            raise
        except (TypeError, ValueError) as exc:
            _, extra = split_point(point)
            raise SpaceError(f"{origin}: its keys {', '.join(sorted(extra))} must be keys of hks.space.SPACE or "
                             f"arguments of keras.optimizers.{point['optimizer']} ({exc})") from None


def run_fixed_trial(point: dict[str, Any], settings: Settings, **kwargs: Any) -> dict[str, Any]:
    """One ``--algo gp`` trial: the fixed architecture configured by a flat point."""
    import functools

    from hks.config import is_auto
    from hks.errors import ConfigError
    from hks.objective import base_learning_rate, run_trial

    if is_auto(settings.base_lr):
        raise ConfigError("--base-lr auto does not apply to --algo gp, which searches the learning rate itself")
    from hks.evaluation import accepted

    build = functools.partial(build_fixed, base_lr=base_learning_rate(settings))
    wanted = accepted(run_trial)[1]
    return run_trial(full_point(point), settings, build=build, **{k: v for k, v in kwargs.items() if k in wanted})
