"""Every setting of hks in one place: its default, its environment variable and its CLI flag.

A setting is declared once, as a field of :class:`Settings` with :func:`option` metadata.
The CLI flags (``--max-evals``), the environment variables (``HKS_MAX_EVALS``) and the
defaults are all derived from that declaration, so they cannot drift apart.
Precedence: CLI flag > environment variable > default.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hks.errors import ConfigError

ALGORITHMS = ("tpe", "rand", "anneal", "atpe", "mtpe", "gp")
DATASETS = ("cifar100", "cifar10")
PRUNE_METHODS = ("none", "median", "asha", "hyperband")
CPU_ALLOCATORS = ("auto", "system", "pool")
TRIAL_PROCESSES = ("auto", "fresh", "same")
PRECISIONS = ("float32", "mixed")
JIT_CHOICES = ("auto", "on", "off")


def option(default: Any, env: str | None, help: str, *, choices: Iterable[str] | None = None,
           identity: bool = False, parse: Callable[[str], Any] | None = None) -> Any:
    """Declare a setting: default value, environment variable (or None) and help text.

    ``identity=True`` marks a setting that changes what a trial's score means (the data, the
    validation split, the training budget...): a search cannot be resumed with another value.
    ``parse`` converts its text when the default's type cannot (e.g. a count or 'auto').
    """
    return field(default=default, metadata={"env": env, "help": help, "choices": tuple(choices or ()),
                                            "identity": identity, "parse": parse})


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def parse_count_or_auto(text: str) -> int | str:
    """A count >= 0, or 'auto' (--workers: one per visible GPU; --prune-warmup-trials: the pruner's own)."""
    value = str(text).strip().lower()
    if value == "auto":
        return "auto"
    count = int(value)
    if count < 0:
        raise ValueError(f"expected a count >= 0 or 'auto', got {text!r}")
    return count


@dataclass
class Settings:
    """What a search, a worker or a report needs to know. Serialisable with :meth:`to_dict`."""

    # --- data -------------------------------------------------------------------------
    dataset: str = option("cifar100", "HKS_DATASET", "dataset to search on", choices=DATASETS, identity=True)
    data_dir: str = option("ml_req", "HKS_DATA_DIR", "folder holding the official CIFAR archives")
    download: bool = option(True, "HKS_DOWNLOAD", "download the archive into --data-dir when it is absent")
    dataset_size: int = option(0, "HKS_DATASET_SIZE", "use only this many training images (0: all)", identity=True)
    val_fraction: float = option(0.1, "HKS_VAL_FRACTION", "fraction of the training set held out for model selection",
        identity=True)
    augment_crop: bool = option(False, "HKS_AUGMENT_CROP", "random 4-pixel-padded crops on training batches",
        identity=True)
    # --- one trial ----------------------------------------------------------------------
    epochs: int = option(100, "HKS_EPOCHS", "maximum epochs per trial", identity=True)
    patience: int = option(6, "HKS_PATIENCE", "early-stopping patience on validation fine accuracy (epochs)",
        identity=True)
    threads: int = option(0, "HKS_THREADS", "TensorFlow threads per process (0: TensorFlow decides)")
    cpu_allocator: str = option("auto", "HKS_CPU_ALLOCATOR", "memory for TensorFlow's CPU kernels: system "
                                "(handed back after each trial), pool (TensorFlow's own: faster, kept at its "
                                "high-water mark while the process lives), or auto: pool in a trial's own "
                                "process, system where trials share one", choices=CPU_ALLOCATORS)
    save_models: bool = option(False, "HKS_SAVE_MODELS", "save each trial's best weights beside its JSON result")
    checkpoint_every: int = option(1, "HKS_CHECKPOINT_EVERY", "save a training trial's state every this many "
                                   "epochs, so that a trial whose worker died resumes there when retried (0: off)")
    trial_process: str = option("auto", "HKS_TRIAL_PROCESS", "where a trial trains: fresh (its own process: "
                                "memory returns after it, a crash or out-of-memory kill fails only that trial), "
                                "same, or auto (fresh for hks's Keras objectives)", choices=TRIAL_PROCESSES)
    precision: str = option("float32", "HKS_PRECISION", "float32, or mixed: float16 compute on GPUs with tensor "
                            "cores, bfloat16 elsewhere; the heads stay float32", choices=PRECISIONS)
    jit: str = option("auto", "HKS_JIT", "XLA-compile the training step: on, off, or auto (Keras's choice: on "
                      "GPUs, off on CPUs)", choices=JIT_CHOICES)
    # --- the search ---------------------------------------------------------------------
    algo: str = option("mtpe", "HKS_ALGO", "search algorithm: mtpe (hks's multivariate TPE with local search), tpe "
                       "(hyperopt's TPE), rand, anneal, atpe, or gp (Ax)", choices=ALGORITHMS)
    max_evals: int = option(100, "HKS_MAX_EVALS", "total trials, counting those already done")
    n_startup_trials: int | str = option("auto", "HKS_N_STARTUP_TRIALS", "finished trials before tpe, atpe or mtpe "
                                         "starts modelling (auto: the algorithm's own, 20 for hyperopt's, 10 for "
                                         "mtpe)", parse=parse_count_or_auto)
    seed: int = option(42, "HKS_SEED", "seed of the search and of the validation split", identity=True)
    space: str = option("hks.space", "HKS_SPACE", "search space: a module name or a .py file defining SPACE",
        identity=True)
    # --- where things go ----------------------------------------------------------------
    results_dir: str = option("results", "HKS_RESULTS_DIR", "folder for JSON results, weights and plots")
    trials_file: str = option("results.pkl", "HKS_TRIALS_FILE", "hyperopt Trials pickle, for resuming")
    experiment_name: str = option("hks_cifar100", "EXPERIMENT_NAME", "name of this search (the store's exp key)")
    plots: bool = option(True, "HKS_PLOTS", "draw architecture pictures of the demo and the best model")
    # --- pruning: stop hopeless trials after an epoch (hks.pruners, docs/pruning.md) ------
    prune: str = option("none", "HKS_PRUNE", "stop hopeless trials early (docs/pruning.md)", choices=PRUNE_METHODS)
    prune_min_epochs: int = option(1, "HKS_PRUNE_MIN_EPOCHS", "epochs every trial runs before it can be pruned "
                                   "(the first rung)")
    prune_reduction_factor: int = option(3, "HKS_PRUNE_REDUCTION_FACTOR", "ASHA/Hyperband keep the top 1/this at "
                                         "each rung; rungs at min-epochs x this**k")
    prune_warmup_trials: int | str = option("auto", "HKS_PRUNE_WARMUP_TRIALS", "no pruning at an epoch until this "
                                            "many other trials have reached it (auto: 4 for median; 0 for asha and "
                                            "hyperband, whose rungs keep the best of a thin rung)",
                                            parse=parse_count_or_auto)
    prune_brackets: int = option(0, "HKS_PRUNE_BRACKETS", "Hyperband brackets (0: all that fit within --epochs)")
    prune_pause: bool = option(False, "HKS_PRUNE_PAUSE", "asha: pause trials at a rung instead of stopping them, "
                               "and resume the best from their checkpoints as the rung fills (ASHA's promotions)")
    prune_sampler_loss: str = option("ranked", "HKS_PRUNE_SAMPLER_LOSS", "loss the sampler sees for a pruned "
                                     "trial: ranked (below longer trials) or best (its best so far)",
                                     choices=("ranked", "best"))
    verbose: bool = option(False, "HKS_VERBOSE", "show TensorFlow's start-up log and retracing warnings")
    # --- distributed search: job store, master and workers (hks.store, hks.worker) --------
    store: str = option("", "HKS_STORE", "job store URL: sqlite:///FILE, postgresql://USER:PASSWORD@HOST/DB "
                        "or mongodb://USER:PASSWORD@HOST/DB (empty: trials run in this process)")
    mongo_db_host: str = option("", "MONGO_DB_HOST", "classic: MongoDB host of the job store when --store is unset")
    mongo_db_port: int = option(27017, "MONGO_DB_PORT", "classic: MongoDB port, with MONGO_DB_HOST")
    objective: str = option("hks.objective:run_trial", "HKS_OBJECTIVE", "trial function workers import by "
                            "name (module:function); a worker must be started with the master's", identity=True)
    workers: int | str = option(0, "HKS_WORKERS", "start this many local worker processes, or 'auto': one per "
                                "visible GPU (SQLite store in --results-dir unless --store is set)",
                                parse=parse_count_or_auto)
    queue_len: int = option(0, "HKS_QUEUE_LEN", "suggestions kept queued for workers (0: one per live worker)")
    lease_seconds: float = option(60.0, "HKS_LEASE_SECONDS", "a running trial whose worker sends no heartbeat "
                                  "this long goes back to the queue")
    max_attempts: int = option(3, "HKS_MAX_ATTEMPTS", "a trial whose worker is lost this many times is failed")
    idle_timeout: float = option(0.0, "HKS_IDLE_TIMEOUT", "a worker with nothing to do exits after this many "
                                 "seconds (0: it waits forever)")
    store_patience: float = option(600.0, "HKS_STORE_PATIENCE", "seconds the master and workers ride out a job "
                                   "store outage (server restart, network loss) before giving up")
    trial_time_limit: float = option(0.0, "HKS_TRIAL_TIME_LIMIT", "a trial still running after this many seconds "
                                     "is failed and its worker exits (0: no limit)")
    gpu: str = option("", "HKS_GPU", "pin a worker to this GPU id (empty: every visible GPU; -1: CPU only)")
    # --- Gaussian-process Bayesian optimisation through Ax (hks.bayesopt, --algo gp) ------
    gp_space: str = option("hks.bayesopt.sgd_space", "HKS_GP_SPACE", "flat space searched by --algo gp: a module "
                           "or .py file whose SPACE maps names to hks.bayesopt Float/Int/Choice")
    gp_init_trials: int = option(5, "HKS_GP_INIT_TRIALS", "Sobol trials before the Gaussian process models "
                                 "(--algo gp; failed trials do not count)")
    # --- autoHyper initial learning rate (hks.autolr) -------------------------------------
    base_lr: str = option("0.001", "HKS_BASE_LR", "base learning rate that lr_rate_mult scales, or 'auto' to "
                          "calibrate it with autoHyper before the search starts", identity=True)
    autolr_min_lr: float = option(1e-4, "HKS_AUTOLR_MIN_LR", "autoHyper: lowest learning rate of the first grid")
    autolr_max_lr: float = option(0.1, "HKS_AUTOLR_MAX_LR", "autoHyper: highest learning rate of the first grid")
    autolr_num_lrs: int = option(20, "HKS_AUTOLR_NUM_LRS", "autoHyper: learning rates per geometric grid (>= 4)")
    autolr_epochs: int = option(5, "HKS_AUTOLR_EPOCHS", "autoHyper: training epochs per trial learning rate")
    autolr_max_trials: int = option(50, "HKS_AUTOLR_MAX_TRIALS", "autoHyper: most learning rates trained")
    autolr_optimizer: str = option("", "HKS_AUTOLR_OPTIMIZER", "autoHyper: Keras optimizer to calibrate "
                                   "(empty: the point's own)")
    autolr_point: str = option("", "HKS_AUTOLR_POINT", "autoHyper: JSON file with the space point (or a trial "
                               "result) whose architecture is trained (empty: the demo point)")
    # --- reports, retraining and TensorBoard (hks.report, hks.retrain) ------------------
    tensorboard: bool = option(False, "HKS_TENSORBOARD", "write TensorBoard logs per trial into "
                               "<results-dir>/tensorboard/")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Settings:
        """Rebuild settings saved with :meth:`to_dict`, ignoring keys from other versions."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def has_coarse_labels(self) -> bool:
        return self.dataset == "cifar100"


def _fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(Settings))


IDENTITY_SETTINGS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Settings) if f.metadata["identity"])
# which images a search's trials trained on (retrain-best takes them from the search unless told otherwise)
SEARCH_DATA_SETTINGS: tuple[str, ...] = ("dataset_size", "val_fraction", "augment_crop", "seed")


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _convert(f: dataclasses.Field, raw: str, source: str) -> Any:
    kind = type(f.default)
    parse = f.metadata["parse"] or (_parse_bool if kind is bool else kind)
    try:
        value = parse(raw)
    except ValueError:
        expected = "value" if f.metadata["parse"] else f"{kind.__name__}"
        raise ConfigError(f"{source}={raw!r} is not a valid {expected}: {f.metadata['help']}") from None
    choices = f.metadata["choices"]
    if choices and value not in choices:
        raise ConfigError(f"{source}={raw!r} is not one of {', '.join(choices)}")
    return value


def add_arguments(parser: argparse.ArgumentParser, names: Iterable[str] | None = None) -> None:
    """Add a flag for each named setting (all by default); unset flags stay None."""
    wanted = set(names) if names is not None else None
    for f in _fields():
        if wanted is not None and f.name not in wanted:
            continue
        env = f.metadata["env"]
        help_text = f"{f.metadata['help']} (default {f.default!r}" + (f", env {env})" if env else ")")
        if type(f.default) is bool:
            parser.add_argument(flag_name(f.name), dest=f.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        else:
            parser.add_argument(flag_name(f.name), dest=f.name, default=None, metavar=f.name.upper(),
                                help=help_text)


def given(args: argparse.Namespace | Mapping[str, Any], name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether a flag or an environment variable sets ``name`` (else it has its default)."""
    cli = vars(args) if isinstance(args, argparse.Namespace) else args
    env = next(f.metadata["env"] for f in _fields() if f.name == name)
    environ = os.environ if environ is None else environ
    return cli.get(name) is not None or bool(env and environ.get(env, ""))


def as_flags(settings: Settings, names: Iterable[str]) -> list[str]:
    """Command-line arguments that set ``names`` to their values in ``settings``."""
    args: list[str] = []
    for name in names:
        value = getattr(settings, name)
        if isinstance(value, bool):
            args.append(flag_name(name) if value else "--no-" + flag_name(name)[2:])
        else:
            args += [flag_name(name), str(value)]
    return args


def resolve(args: argparse.Namespace | Mapping[str, Any] | None = None,
            environ: Mapping[str, str] | None = None, fallback: Mapping[str, Any] | None = None) -> Settings:
    """Settings from CLI values (strings or typed), then environment, then ``fallback`` (say, what a
    search saved, for a command that follows it), then defaults."""
    cli = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    from_env: dict[str, str] = {}
    for f in _fields():
        env = f.metadata["env"]
        if cli.get(f.name) is not None:
            raw = cli[f.name]
            values[f.name] = _convert(f, raw, flag_name(f.name)) if isinstance(raw, str) else raw
        elif env and environ.get(env, "") != "":
            values[f.name] = _convert(f, environ[env], env)
            from_env[f.name] = env
        elif fallback and fallback.get(f.name) is not None:
            values[f.name] = fallback[f.name]
    settings = Settings(**values)
    _validate(settings, lambda name: from_env.get(name) or flag_name(name))
    return settings


def markdown_table() -> str:
    """Every setting as a Markdown table row: flag, environment variable, default, meaning."""
    rows = ["| flag | environment variable | default | meaning |", "|---|---|---|---|"]
    for f in _fields():
        default = "(empty)" if f.default == "" else f"`{f.default}`"
        env = f"`{f.metadata['env']}`" if f.metadata["env"] else ""
        rows.append(f"| `{flag_name(f.name)}` | {env} | {default} | {f.metadata['help']} |")
    return "\n".join(rows)


GPU_IDS = r"(-1|((\d+|GPU-[\w-]+|MIG-[\w/-]+),?)+)?"  # what CUDA_VISIBLE_DEVICES takes (a trailing comma too)


def _validate(settings: Settings, named: Callable[[str], str] = flag_name) -> None:
    """Refuse impossible values in one line; ``named(field)``: where the value came from (its flag, or the
    environment variable that set it), so that the line names what to fix."""
    for name, low in (("max_evals", 0), ("epochs", 1), ("dataset_size", 0), ("checkpoint_every", 0), ("threads", 0),
                      ("patience", 0), ("prune_min_epochs", 1), ("prune_reduction_factor", 2), ("prune_brackets", 0),
                      ("mongo_db_port", 1)):
        if getattr(settings, name) < low:
            meaning = _ZERO_MEANS.get(name, "")
            raise ConfigError(f"{named(name)} must be >= {low}{meaning}, got {getattr(settings, name)}")
    for name in ("lease_seconds", "store_patience", "idle_timeout", "trial_time_limit"):
        if not math.isfinite(getattr(settings, name)):
            raise ConfigError(f"{named(name)} must be a number of seconds, got {getattr(settings, name)}")
    if settings.mongo_db_port > 65535:
        raise ConfigError(f"{named('mongo_db_port')} must be a port number up to 65535, got {settings.mongo_db_port}")
    if not re.fullmatch(GPU_IDS, settings.gpu.replace(" ", "")):
        raise ConfigError(f"{named('gpu')} must be a GPU id such as 0, ids such as 0,1 (CUDA's GPU-/MIG- ids too), "
                          f"or -1 for the CPU; got {settings.gpu!r}")
    if not 0.0 < settings.val_fraction < 1.0:
        raise ConfigError(f"{named('val_fraction')} must be between 0 and 1, got {settings.val_fraction}")
    _validate_base_lr(settings.base_lr, named("base_lr"))
    _validate_pruning(settings)


_ZERO_MEANS = {"dataset_size": " (0 means all)", "checkpoint_every": " (0: no checkpoints)",
               "threads": " (0: TensorFlow decides)"}


def _validate_pruning(settings: Settings) -> None:
    if settings.prune_pause and settings.prune != "asha":
        raise ConfigError(f"--prune-pause pauses ASHA's trials: use it with --prune asha, not --prune {settings.prune}")
    if settings.prune_pause and settings.checkpoint_every == 0:
        raise ConfigError("--prune-pause resumes paused trials from their checkpoints: set --checkpoint-every 1 "
                          "(or more), not 0")


def is_auto(base_lr: str) -> bool:
    """Whether a ``--base-lr`` value asks for autoHyper calibration."""
    return base_lr.strip().lower() == "auto"


def _validate_base_lr(text: str, name: str = "--base-lr") -> None:
    """--base-lr is 'auto' or a positive number (hks.autolr)."""
    if is_auto(text):
        return
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{name}={text!r} must be a positive number such as 0.001, or 'auto' to calibrate it")
