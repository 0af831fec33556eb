"""The classic hyperopt search space over training hyperparameters and the architecture.

A user space is any module (or ``.py`` file) that defines ``SPACE``; :func:`load_space` imports
it by name, which is also how distributed workers rebuild it (no code travels through a store).
Multipliers are applied to the base values below by the model builder. A space is searched for
one dataset (:func:`for_dataset`): dimensions that cannot matter there are fixed, not searched.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from hyperopt import hp
from hyperopt.pyll import Apply, as_apply, scope
from hyperopt.pyll.stochastic import sample

from hks.errors import SpaceError

BASE_LEARNING_RATE = 0.001
BASE_L2_REG = 0.0007
BASE_CONV_FILTERS = 40
BASE_FC_UNITS_1 = 1000
BASE_FC_UNITS_2 = 750
OPTIMIZERS = ("Adam", "Nadam", "RMSprop")
POOLING_TYPES = ("max", "avg", "all_conv", "inception")
ACTIVATIONS = ("relu", "elu")


def int_range(label: str, low: int, high: int) -> Apply:
    """Integers low..high, each about equally likely (plain quniform halves the end points).

    Still ordinal for TPE (unlike hp.randint); ``scope.int`` turns the float (and -0.0) into an int.
    """
    return scope.int(hp.quniform(label, low - 0.499, high + 0.499, 1))


SPACE: dict[str, Any] = {
    # Training hyperparameters.
    "lr_rate_mult": hp.loguniform("lr_rate_mult", -0.5, 0.5),
    "l2_weight_reg_mult": hp.loguniform("l2_weight_reg_mult", -1.3, 1.3),
    "batch_size": scope.int(hp.quniform("batch_size", 100, 700, 5)),
    "optimizer": hp.choice("optimizer", list(OPTIMIZERS)),
    "coarse_labels_weight": hp.uniform("coarse_labels_weight", 0.1, 0.7),
    "conv_dropout_drop_proba": hp.uniform("conv_dropout_drop_proba", 0.0, 0.35),
    "fc_dropout_drop_proba": hp.uniform("fc_dropout_drop_proba", 0.0, 0.6),
    "use_BN": hp.choice("use_BN", [False, True]),
    # Architecture.
    "first_conv": hp.choice("first_conv", [None, hp.choice("first_conv_size", [3, 4])]),
    "residual": hp.choice("residual", [None, int_range("residual_units", 1, 4)]),
    "conv_hiddn_units_mult": hp.loguniform("conv_hiddn_units_mult", -0.6, 0.6),
    "nb_conv_pool_layers": hp.choice("nb_conv_pool_layers", [2, 3]),
    "conv_pool_res_start_idx": int_range("conv_pool_res_start_idx", 0, 2),
    "pooling_type": hp.choice("pooling_type", list(POOLING_TYPES)),
    "conv_kernel_size": int_range("conv_kernel_size", 2, 4),
    "res_conv_kernel_size": int_range("res_conv_kernel_size", 2, 4),
    "fc_units_1_mult": hp.loguniform("fc_units_1_mult", -0.6, 0.6),
    "one_more_fc": hp.choice("one_more_fc", [None, hp.loguniform("fc_units_2_mult", -0.6, 0.6)]),
    "activation": hp.choice("activation", list(ACTIVATIONS)),
}


# Keys that only the coarse head uses: fixed to None on a dataset without coarse labels.
COARSE_ONLY_KEYS = ("coarse_labels_weight",)


def missing_keys(point: dict[str, Any]) -> list[str]:
    """What a point lacks for hks's own model builders to build it (none for a modern-space point);
    a point of your own space, trained by your own builder, lacks some."""
    return [] if point.get("architecture") == "resnet" else [key for key in SPACE if key not in point]


def for_dataset(space: Any, dataset: str | None) -> Any:
    """``space`` as searched on ``dataset``: without coarse labels the coarse head's keys are fixed to None.

    A fixed key is not a dimension, so TPE does not spend trials on it and the importance plot cannot
    rank it; the key stays in every point (as None) so that the model builder's contract holds. The
    fingerprint changes with it, so a CIFAR-10 search never resumes a CIFAR-100 one.
    """
    if dataset is None or not isinstance(space, dict):
        return space
    from hks.data import spec_for

    if spec_for(dataset).num_coarse:
        return space
    return {key: (None if key in COARSE_ONLY_KEYS else value) for key, value in space.items()}


def load_space(name: str, dataset: str | None = None) -> Any:
    """The ``SPACE`` of a module name (``hks.space``) or ``.py`` file, as hyperopt expressions, for ``dataset``.

    A flat space (``hks.bayesopt`` Float/Int/Choice, what ``--algo gp`` models) is translated,
    so every sampler, runner and worker handles it like any other space.
    """
    space = load_raw_space(name)
    from hks.bayesopt.flat import Choice, Float, Int, to_hyperopt

    if isinstance(space, dict) and space and all(isinstance(v, (Float, Int, Choice)) for v in space.values()):
        space = to_hyperopt(space)
    return for_dataset(space, dataset)


SPACE_ALIASES = {"classic": "hks.space", "modern": "hks.modern_space"}


def load_raw_space(name: str) -> Any:
    """The ``SPACE`` of a built-in space's short name (``classic``, ``modern``), a module name
    (``hks.space``) or a ``.py`` file path, as written."""
    name = SPACE_ALIASES.get(name, name)
    try:
        if name.endswith(".py"):
            path = Path(name)
            if not path.is_file():
                raise SpaceError(f"space file {name} not found")
            module_name = "hks_user_space_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
            spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(name)
    except SpaceError:
        raise
    except Exception as exc:
        raise SpaceError(f"cannot import search space {name!r}: {exc}") from None
    if not hasattr(module, "SPACE"):
        raise SpaceError(f"search space {name!r} defines no SPACE variable")
    return module.SPACE


def fingerprint(space: Any) -> str:
    """A stable hash of a space's structure, labels and ranges (not of its Python identity)."""
    return hashlib.sha256(str(as_apply(space)).encode()).hexdigest()[:16]


def sample_point(space: Any, seed: int) -> dict[str, Any]:
    """One random point of the space, with the values the model builder receives."""
    import numpy as np

    return sample(space, rng=np.random.default_rng(seed))


def classic_demo_point() -> dict[str, Any]:
    """The classic sample's ``space_base_demo_to_plot``: the point ``model_demo.png`` draws."""
    return {
        "lr_rate_mult": 1.0, "l2_weight_reg_mult": 1.0, "batch_size": 300, "optimizer": "Nadam",
        "coarse_labels_weight": 0.2, "conv_dropout_drop_proba": 0.175, "fc_dropout_drop_proba": 0.3,
        "use_BN": True, "first_conv": 4, "residual": 4, "conv_hiddn_units_mult": 1.0,
        "nb_conv_pool_layers": 3, "conv_pool_res_start_idx": 0, "pooling_type": "inception",
        "conv_kernel_size": 3, "res_conv_kernel_size": 3, "fc_units_1_mult": 1.0,
        "one_more_fc": 1.0, "activation": "elu",
    }


def demo_point() -> dict[str, Any]:
    """A fixed mid-size point of the classic space, quicker to train than the classic demo point:
    tests, benchmarks and autoHyper's default architecture use it."""
    return {
        "lr_rate_mult": 1.0, "l2_weight_reg_mult": 1.0, "batch_size": 128, "optimizer": "Adam",
        "coarse_labels_weight": 0.3, "conv_dropout_drop_proba": 0.1, "fc_dropout_drop_proba": 0.3,
        "use_BN": True, "first_conv": 3, "residual": 1, "conv_hiddn_units_mult": 1.0,
        "nb_conv_pool_layers": 2, "conv_pool_res_start_idx": 1, "pooling_type": "max",
        "conv_kernel_size": 3, "res_conv_kernel_size": 3, "fc_units_1_mult": 0.5,
        "one_more_fc": None, "activation": "relu",
    }
