"""One trial: build the model of a space point, train it with early stopping, summarise it.

:func:`run_trial` never raises for a trial's own failure (exception, NaN loss, out of memory):
it returns ``status: fail`` with the error and traceback, so the search goes on. Problems with
the setup itself (missing dataset, bad settings) do raise, since every trial would fail alike.
It writes no JSON result: whoever completes the trial (the in-process search, or a worker once
the store accepted the result) calls :func:`save_result`, so each trial has exactly one.
"""

from __future__ import annotations

import functools
import math
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hks import checkpoint as ckpt
from hks import progress
from hks import results as res
from hks.config import Settings
from hks.data import Splits, archive_path, load_splits, make_dataset, point_augmentation, skip_epochs
from hks.errors import ConfigError, DatasetError, HksError
from hks.memory import PeakRss, release_memory, use_cpu_allocator
from hks.model import build_model
from hks.precision import apply_jit, dtype_policy
from hks.seeding import TRAIN, trial_seed

EpochHook = Callable[[int, dict[str, float]], None]
PruneHook = Callable[[int, dict[str, float]], Any]  # truthy: stop (an hks.pruners.Decision, or a bool)
ModelBuilder = Callable[..., Any]

if TYPE_CHECKING:
    import keras


class Pruning(Protocol):
    """What :func:`prune_callback` returns beside being a Keras callback: the pruner's kept answer, and a way
    to replay a resumed trial's past epochs to it."""

    decision: Any

    def ask(self, epoch: int, logs: dict[str, float], final: bool = True) -> Any: ...


class NonFiniteLoss(RuntimeError):
    """Training diverged: the loss became NaN or infinite."""


def configure_tensorflow(settings: Settings) -> None:
    """Before TensorFlow's first operation: its CPU allocator (flat memory across trials, see
    :mod:`hks.memory`) and thread pools capped so that several workers on one machine share its cores."""
    use_cpu_allocator(settings.cpu_allocator)
    threads = settings.threads
    if threads <= 0:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
    except RuntimeError:
        pass  # TensorFlow already started; the first setting stays in force.


def base_learning_rate(settings: Settings) -> float:
    """``--base-lr`` as a number; 'auto' must have been calibrated by the search driver first."""
    try:
        return float(settings.base_lr)
    except ValueError:
        raise ConfigError(f"--base-lr {settings.base_lr!r} is not a number; use e.g. 0.001, or 'auto' "
                          "on a search (it is calibrated before the first trial)") from None


def splits_for(settings: Settings) -> Splits:
    """The train/validation/test splits of the settings, loaded once per process (trials share them)."""
    return _cached_splits(settings.dataset, settings.data_dir, settings.download, settings.val_fraction,
                          settings.dataset_size, settings.seed)


@functools.lru_cache(maxsize=1)
def _cached_splits(dataset: str, data_dir: str, download: bool, val_fraction: float, dataset_size: int,
                   seed: int) -> Splits:
    return load_splits(dataset, data_dir, download=download, val_fraction=val_fraction,
                       dataset_size=dataset_size, seed=seed)


def check_setup(settings: Settings, *, load: bool = True) -> None:
    """What would make every trial fail alike (no dataset, no tensorboard package), checked before a search
    writes anything. ``load``: read the splits now (cached for this process's trials); else only find the archive."""
    require_tensorboard(settings)
    if load:
        splits = splits_for(settings)
        have = len(splits.train) + len(splits.val)
        if settings.dataset_size > have:
            print(f"note: --dataset-size {settings.dataset_size} is more than the {have} training images "
                  f"{settings.dataset} has here: all {have} are used", flush=True)
    else:
        archive_path(settings.dataset, settings.data_dir, settings.download)


def epoch_progress_callback(settings: Settings, on_epoch: EpochHook | None, verbose: bool) -> keras.callbacks.Callback:
    import keras

    class EpochProgress(keras.callbacks.Callback):
        """Prints one line per epoch and forwards the metrics (e.g. to a worker's store); stops a
        trial whose loss is no longer finite, at the end of that epoch."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            logs = {k: float(v) for k, v in (logs or {}).items()}
            if not math.isfinite(logs.get("loss", 0.0)):
                self.model.stop_training = True  # diverged: summarize() fails the trial
            if verbose:
                print(progress.epoch_line(epoch, settings.epochs, logs, time.perf_counter() - self.started),
                      flush=True)
            if on_epoch is not None:
                on_epoch(epoch, logs)

    return EpochProgress()


def prune_callback(should_prune: PruneHook) -> Pruning:
    """Asks ``should_prune(epoch, logs)`` after each epoch; a truthy answer stops training and is kept."""
    import keras

    class Prune(keras.callbacks.Callback):
        decision: Any = None

        def ask(self, epoch: int, logs: dict[str, float], final: bool = True) -> Any:
            """Ask about ``epoch``; only a ``final`` answer is kept (a resumed trial's past epochs are not)."""
            answer = should_prune(epoch, logs)
            if answer and final:
                self.decision = answer
            return answer if final else None

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            if self.ask(epoch, {k: float(v) for k, v in (logs or {}).items()}):
                self.model.stop_training = True

    return Prune()


def require_tensorboard(settings: Settings) -> None:
    """``--tensorboard`` without the tensorboard package would fail every trial: say so once, up front."""
    if not settings.tensorboard:
        return
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("--tensorboard (HKS_TENSORBOARD) needs the tensorboard package: "
                          "pip install tensorboard, or turn the option off") from None


def tensorboard_callback(settings: Settings, name: str,
                         point: dict[str, Any] | None = None) -> keras.callbacks.Callback:
    """TensorBoard logs in ``<results_dir>/tensorboard/<name>`` (``--tensorboard``), with the point as HParams."""
    from hks.tensorboard_log import trial_callback

    return trial_callback(Path(settings.results_dir) / "tensorboard" / name, name, point)


def train_model(model: keras.Model, splits: Splits, batch_size: int, settings: Settings, *, seed: int,
                on_epoch: EpochHook | None = None, verbose: bool = True,
                log_name: str | None = None, pruning: Pruning | None = None,
                point: dict[str, Any] | None = None, resumed: ckpt.Checkpoint | None = None,
                save_to: tuple[Path, str] | None = None) -> dict[str, list[float]]:
    """Fit with early stopping on validation fine accuracy; returns the per-epoch history.

    ``pruning``: a :func:`prune_callback`, which may stop training before early stopping does.
    ``resumed``: a checkpoint already restored into ``model``; training goes on after its epochs and
    the history returned includes them. ``save_to``: (path, fingerprint) of this trial's checkpoint,
    written every ``--checkpoint-every`` epochs.
    """

    augment = point_augmentation(point or {}, settings.augment_crop)
    done = resumed.epochs_done if resumed is not None else 0
    train = make_dataset(splits.train, batch_size, training=True, seed=seed, threads=settings.threads, **augment)
    train = skip_epochs(train, done)
    val = make_dataset(splits.val, batch_size, training=False, threads=settings.threads)
    prior = resumed.history if resumed is not None else {}
    stopping = early_stopping(settings, resumed)
    # Order: the checkpoint records early stopping's and the pruner's answers for the epoch, and comes
    # before the progress hook, whose stop checks (SIGTERM, a lost lease) end training at once.
    # No per-batch callback (TerminateOnNaN is one): each would sync every step.
    callbacks = [fine_head_names(), stopping] + ([pruning] if pruning is not None else [])
    if save_to is not None:
        callbacks.append(checkpoint_callback(save_to, settings.checkpoint_every, stopping, pruning, prior,
                                             resumed.seconds if resumed is not None else 0.0))
    callbacks.append(epoch_progress_callback(settings, on_epoch, verbose))
    if settings.tensorboard:
        callbacks.append(tensorboard_callback(settings, log_name or f"seed_{seed}", point))
    history: dict[str, list[float]] = {}
    if done < settings.epochs and not (resumed is not None and resumed.finished):
        fitted = model.fit(train, validation_data=val, epochs=settings.epochs, initial_epoch=done, verbose=0,
                           callbacks=callbacks, shuffle=False)  # tf.data shuffles already
        history = fitted.history
    elif resumed is not None and resumed.best_weights and settings.save_models:
        model.set_weights(resumed.best_weights)  # what early stopping would restore at its end
    out = {k: list(prior.get(k, [])) + [float(v) for v in history.get(k, [])] for k in {*prior, *history}}
    for prefix in ("", "val_"):  # a single-head model logs its head's loss as the total loss
        if f"{prefix}fine_loss" not in out and f"{prefix}loss" in out:
            out[f"{prefix}fine_loss"] = out[f"{prefix}loss"]
    return out


def fine_head_names() -> keras.callbacks.Callback:
    """A callback that logs a one-head model's ``accuracy`` as ``fine_accuracy`` (and ``val_``), as hks's
    own models name it: Keras prefixes metrics with the head's name only when there are several heads, so
    a ``keras_objective`` builder compiled with ``metrics=["accuracy"]`` would otherwise be unreadable to
    early stopping, pruning and the results. Later callbacks (and the history) see the same logs."""
    import keras

    class FineHeadNames(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            for prefix in ("", "val_"):
                if logs is not None and f"{prefix}fine_accuracy" not in logs and f"{prefix}accuracy" in logs:
                    logs[f"{prefix}fine_accuracy"] = logs[f"{prefix}accuracy"]

    return FineHeadNames()


def early_stopping(settings: Settings, resumed: ckpt.Checkpoint | None = None) -> keras.callbacks.EarlyStopping:
    """Keras's early stopping on validation fine accuracy, taking up a resumed trial's patience count."""
    import keras

    class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
        def on_train_begin(self, logs: dict | None = None) -> None:
            super().on_train_begin(logs)
            state = resumed.stopping if resumed is not None else {}
            if state.get("best") is not None:
                self.wait, self.best, self.best_epoch = state["wait"], state["best"], state["best_epoch"]
                self.best_weights = resumed.best_weights or None

        def state(self) -> dict[str, Any]:
            best = None if self.best is None else float(self.best)
            return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch),
                    "stopped": self.stopped_epoch > 0}  # Keras never stops at epoch 0

    return ResumableEarlyStopping(monitor="val_fine_accuracy", mode="max", patience=settings.patience,
                                  restore_best_weights=settings.save_models)


def checkpoint_callback(save_to: tuple[Path, str], every: int, stopping: keras.callbacks.EarlyStopping,
                        pruning: Pruning | None, prior: dict[str, list[float]],
                        prior_seconds: float = 0.0) -> keras.callbacks.Callback:
    """Writes the trial's checkpoint (:mod:`hks.checkpoint`) after every ``every`` epochs, and at a pause
    (the trial resumes from there), with early stopping's state, the pruner's stop if it said stop, and the
    training time so far (``prior_seconds`` from earlier attempts)."""
    import keras

    path, key = save_to

    class Checkpointing(keras.callbacks.Callback):
        failed = False

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.history = {k: list(v) for k, v in prior.items()}
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            for k, v in (logs or {}).items():
                self.history.setdefault(k, []).append(float(v))
            decision = pruning.decision if pruning is not None else None
            paused = bool(decision) and getattr(decision, "pause", False)
            if ((epoch + 1) % every != 0 and not paused) or self.failed:
                return
            state = stopping.state()
            if decision and not paused:
                state["pruned"] = pruned_fields(decision, epoch + 1)
            try:
                seconds = prior_seconds + time.perf_counter() - self.started
                ckpt.save(path, ckpt.capture(self.model, key, self.history, state, stopping.best_weights, seconds))
            except OSError as exc:  # a full or read-only disk costs the resume, never the trial
                self.failed = True
                print(f"    cannot write the checkpoint {path} ({exc.strerror or exc}); training goes on "
                      "without one", flush=True)

    return Checkpointing()


def summarize(history: dict[str, list[float]]) -> dict[str, Any]:
    """The classic result fields from a history; ``loss`` is minus the best validation fine accuracy."""
    losses = history.get("loss", [])
    bad = [i for i, value in enumerate(losses) if not math.isfinite(value)]
    if not losses or bad:
        raise NonFiniteLoss(f"loss became non-finite at epoch {bad[0] + 1 if bad else 1}")
    out: dict[str, Any] = {}
    for head in ("fine", "coarse"):
        acc, loss = history.get(f"val_{head}_accuracy"), history.get(f"val_{head}_loss")
        out[f"{head}_best_accuracy"] = max(acc) if acc else None
        out[f"{head}_best_loss"] = min(loss) if loss else None
        out[f"{head}_end_accuracy"] = acc[-1] if acc else None
        out[f"{head}_end_loss"] = loss[-1] if loss else None
    val_fine = history["val_fine_accuracy"]
    out["loss"] = -out["fine_best_accuracy"]
    out["real_loss"] = min(history["val_loss"])
    out["best_epoch"] = val_fine.index(max(val_fine)) + 1
    out["epochs_run"] = len(val_fine)
    return out


def run_trial(point: dict[str, Any], settings: Settings, *, splits: Splits | None = None,
              tid: int | None = None, on_epoch: EpochHook | None = None,
              build: ModelBuilder | None = None, verbose: bool = True,
              should_prune: PruneHook | None = None, checkpoint: str | Path | None = None) -> dict[str, Any]:
    """Train one point of the space and return its hyperopt result (not written: see :func:`save_result`).

    ``build(point, num_fine, num_coarse)`` makes the compiled model; by default the classic
    builder with the configured base learning rate. ``should_prune(epoch, logs)`` is asked after
    each epoch (see :mod:`hks.pruners`); when it answers yes the trial stops with ``status: pruned``,
    its partial history, ``pruned_at_epoch`` and the deciding ``rung`` (hyperopt must be handed
    :func:`hks.pruners.sampler_result` of it). ``checkpoint``: this trial's checkpoint file
    (:mod:`hks.checkpoint`): a matching one is resumed (its epochs are handed to ``on_epoch`` and
    ``should_prune`` again first, so that listeners see the whole curve), and it is rewritten as
    training goes on; whoever records the result removes it.
    """
    import keras

    base_lr = base_learning_rate(settings)
    configure_tensorflow(settings)
    require_tensorboard(settings)
    splits = splits if splits is not None else splits_for(settings)
    batch_size = int(point.get("batch_size") or 128)
    if build is None:
        build = functools.partial(build_model, base_lr=base_lr,
                                  train_steps=settings.epochs * math.ceil(len(splits.train) / batch_size))
    seed = trial_seed(settings.seed, tid or 0, TRAIN)
    started = time.time()
    base = {"space": point, "seed": seed, "tid": tid, "dataset": settings.dataset, "started_at": started,
            "base_lr": base_lr, "val_images": len(splits.val)}
    model, earlier, history = None, 0.0, {}  # earlier: training time of a resumed trial's earlier attempts
    memory = PeakRss().start()
    try:
        keras.utils.set_random_seed(seed)
        with dtype_policy(settings.precision):
            model = build(point, splits.spec.num_fine, splits.spec.num_coarse)
        apply_jit(model, settings.jit)
        key = ckpt.fingerprint(point, seed, settings.epochs)
        resumed, note = resume(model, Path(checkpoint) if checkpoint else None, key)
        if verbose:
            _announce(tid, settings, point, model, resumed, note)
        pruning = prune_callback(should_prune) if should_prune is not None else None
        if resumed is not None:
            earlier = resumed.seconds
            replay_epochs(resumed, on_epoch, pruning)
        history = train_model(model, splits, batch_size, settings, seed=seed, on_epoch=on_epoch, verbose=verbose,
                              log_name=f"trial_{progress.trial_number(tid)}" if tid is not None else None,
                              point=point, pruning=pruning, resumed=resumed,
                              save_to=(Path(checkpoint), key) if checkpoint else None)
        result = _outcome({**base, "params": int(model.count_params())}, history, resumed, pruning)
        if result["status"] == res.STATUS_OK and settings.save_models:
            result["weights_file"] = _save_model(model, settings.results_dir, result["model_name"])
    except (DatasetError, ConfigError, KeyboardInterrupt):
        raise
    except Exception as exc:  # a trial's own failure: recorded, the search goes on
        result = {**base, "status": res.STATUS_FAIL, "loss": None, "model_name": res.make_model_name(None),
                  "error": _one_line(exc), "error_type": type(exc).__name__,
                  "traceback": traceback.format_exc(), "history": history}
    finally:
        del model
        keras.backend.clear_session()
        release_memory()
    result["peak_rss_mb"] = round(memory.stop(), 1)
    result["finished_at"] = time.time()
    result["train_seconds"] = round(result["finished_at"] - started + earlier, 3)
    return result


def _announce(tid: int | None, settings: Settings, point: dict[str, Any], model: keras.Model,
              resumed: ckpt.Checkpoint | None, note: str) -> None:
    print(progress.trial_start_line(tid, settings.max_evals, point, params=model.count_params()), flush=True)
    if note or resumed:
        print(f"    {note or f'resumed from its checkpoint after epoch {resumed.epochs_done}'}", flush=True)


def _outcome(base: dict[str, Any], history: dict[str, list[float]], resumed: ckpt.Checkpoint | None,
             pruning: Pruning | None) -> dict[str, Any]:
    """A trained trial's result: ok, or pruned (by the pruner now, or before a resume: then the
    checkpoint holds the pruner's answer, since the result was never recorded)."""
    result = {**base, **summarize(history), "history": history, "status": res.STATUS_OK}
    if resumed is not None:
        result["resumed_from_epoch"] = resumed.epochs_done
    result["model_name"] = res.make_model_name(result["fine_best_accuracy"])
    if resumed is not None and resumed.stopping.get("pruned"):
        result.update(resumed.stopping["pruned"])
    elif pruning is not None and pruning.decision:
        result.update(pruned_fields(pruning.decision, result["epochs_run"]))
    return result


def resume(model: keras.Model, path: Path | None, key: str) -> tuple[ckpt.Checkpoint | None, str]:
    """The trial's checkpoint restored into ``model``, or None; and a note when one was set aside."""
    resumed, note = ckpt.load(path, key)
    if resumed is not None and not ckpt.restore(model, resumed):
        return None, f"checkpoint {path.name} does not fit this model; starting afresh"
    return resumed, note


def replay_epochs(resumed: ckpt.Checkpoint, on_epoch: EpochHook | None, pruning: Pruning | None) -> None:
    """Hand a resumed trial's past epochs to the listeners again (a worker's store lost them when the trial was
    requeued; the pruner's hook collects the curve). The pruner's answers for them were given when they ran,
    and are in the checkpoint: a paused trial resumes because it was promoted, so none is asked again."""
    for epoch, values in enumerate(resumed.epoch_logs()):
        if on_epoch is not None:
            on_epoch(epoch, values)
        if pruning is not None:
            pruning.ask(epoch, values, final=False)


def save_result(result: dict[str, Any], results_dir: str | Path) -> Path:
    """Write a completed trial's JSON result once (a second call for the same trial changes nothing).

    Call it only after the trial's completion was accepted (by the store's fenced ``complete``, or
    by the in-process search), never before: a trial stopped in between must leave no result."""
    path = Path(results_dir) / f"{result['model_name']}{res.RESULT_SUFFIX}"
    return path if path.exists() else res.write_result(result, results_dir)


def pruned_fields(decision: Any, epochs_run: int) -> dict[str, Any]:
    """What a pruned result adds: its status, the epoch and rung (and bracket) it stopped at."""
    fields = {"status": res.STATUS_PRUNED, "pruned": True, "pruned_at_epoch": epochs_run,
              "rung": getattr(decision, "rung", None), "prune_reason": getattr(decision, "reason", "")}
    if getattr(decision, "pause", False):
        fields["paused"] = True  # it keeps its checkpoint and may be resumed (--prune-pause)
    if getattr(decision, "bracket", None) is not None:
        fields["bracket"] = decision.bracket
    return fields


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, HksError):
        return message
    return f"{type(exc).__name__}: {message}"[:500]


def _save_model(model: keras.Model, results_dir: str, model_name: str) -> str:
    path = Path(results_dir) / f"{model_name}.keras"
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return str(path)
