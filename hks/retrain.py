"""Retrain the search's best configuration on train + validation, test it once, save and export it.

The search picks a configuration on the validation split; its honest accuracy comes from training
that configuration again on every training image (train + validation pooled) and evaluating it
exactly once on the test split, which nothing else ever reads. Without a validation split there is
no early stopping, so retraining runs for the epoch at which the trial's validation accuracy peaked
(``--epochs`` overrides it). The test figures are recorded in the trial's JSON result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hks import config
from hks import results as res
from hks.config import Settings
from hks.data import Split, Splits, load_cifar, make_dataset
from hks.errors import HksError
from hks.model import build_model
from hks.objective import (
    configure_threads,
    epoch_progress_callback,
    require_tensorboard,
    splits_for,
    tensorboard_callback,
)

RETRAINED_SUFFIX = "_retrained.keras"
EXPORT_SUFFIX = "_export"
EVAL_BATCH = 256
DATASET_BY_CLASSES = {100: "cifar100", 10: "cifar10"}
RETRAIN_SETTINGS = ("data_dir", "download", "dataset_size", "val_fraction", "augment_crop", "threads", "seed",
                    "results_dir", "trials_file", "experiment_name", "tensorboard", "base_lr")
EVALUATE_SETTINGS = ("data_dir", "download", "threads")


class ModelFileError(HksError):
    """A saved model cannot be found, loaded or matched to a dataset."""


class NoBestTrialError(HksError):
    """The results hold no successful trial to retrain."""


# --- retraining ---------------------------------------------------------------------------------

def pooled(splits: Splits) -> Split:
    """Train and validation as one training set (the test split stays apart)."""
    coarse = None if splits.train.coarse is None else np.concatenate([splits.train.coarse, splits.val.coarse])
    return Split(np.concatenate([splits.train.x, splits.val.x]),
                 np.concatenate([splits.train.fine, splits.val.fine]), coarse)


def retrain_epochs(best: dict[str, Any], epochs: int | None, settings: Settings) -> int:
    if epochs is not None:
        if epochs < 1:
            raise HksError(f"--epochs must be >= 1, got {epochs}")
        return epochs
    return int(best.get("best_epoch") or settings.epochs)


def retrain_best(settings: Settings, results: list[dict[str, Any]], *, epochs: int | None = None,
                 verbose: bool = True) -> dict[str, Any]:
    """Retrain the best of ``results``, test it, save ``.keras`` + export; returns the ``test`` record."""
    best = res.best_result(results)
    if best is None:
        raise NoBestTrialError(f"no successful trial among {len(results)} result(s): nothing to retrain; "
                               "run a search first (python -m hks search) or pass --from with its results")
    settings = settings.replace(dataset=best.get("dataset") or settings.dataset)
    n_epochs = retrain_epochs(best, epochs, settings)
    configure_threads(settings.threads)
    require_tensorboard(settings)
    splits = splits_for(settings)
    train = pooled(splits)
    if verbose:
        print(f"retraining {best['model_name']} (validation fine accuracy {-best['loss']:.4f}) on "
              f"{len(train)} train+validation images for {n_epochs} epoch(s)", flush=True)
    started = time.time()
    model = _fit(best, train, splits, settings, n_epochs, verbose)
    figures = evaluate_model(_keras_predictor(model), splits.test)
    paths = save_model(model, settings.results_dir, best["model_name"])
    test = {**figures, "epochs": n_epochs, "train_images": len(train), "dataset": settings.dataset,
            **paths, "retrained_at": time.time(), "retrain_seconds": round(time.time() - started, 3)}
    record_test(best, test, settings.results_dir)
    if verbose:
        print(describe(test), flush=True)
    return test


def _fit(best: dict[str, Any], train: Split, splits: Splits, settings: Settings, epochs: int, verbose: bool):
    import keras

    point = best["space"]
    keras.utils.set_random_seed(int(best.get("seed") or settings.seed))
    model = build_model(point, splits.spec.num_fine, splits.spec.num_coarse, base_lr=trial_base_lr(best, settings))
    batch_size = int(point.get("batch_size") or 128)
    data = make_dataset(train, batch_size, training=True, augment_crop=settings.augment_crop, seed=settings.seed,
                        threads=settings.threads)
    callbacks = [keras.callbacks.TerminateOnNaN(),
                 epoch_progress_callback(settings.replace(epochs=epochs), None, verbose)]
    if settings.tensorboard:
        callbacks.append(tensorboard_callback(settings, f"retrain_{best['model_name']}"))
    history = model.fit(data, epochs=epochs, verbose=0, callbacks=callbacks, shuffle=False)  # tf.data shuffles
    if not np.all(np.isfinite(history.history.get("loss", [np.nan]))):
        raise HksError(f"retraining {best['model_name']} diverged (non-finite loss); try fewer --epochs")
    return model


def trial_base_lr(best: dict[str, Any], settings: Settings) -> float:
    """The base learning rate the trial trained with: its own record, else ``--base-lr``."""
    if isinstance(best.get("base_lr"), (int, float)):
        return float(best["base_lr"])
    try:
        return float(settings.base_lr)
    except ValueError:
        raise HksError(f"{best['model_name']} does not record its base learning rate and --base-lr is "
                       f"{settings.base_lr!r}: pass --base-lr with the value the search used "
                       "(autoHyper prints it when it calibrates)") from None


def save_model(model, results_dir: str, model_name: str) -> dict[str, str]:
    """``<model_name>_retrained.keras`` (Keras, trainable) and ``<model_name>_export/`` (SavedModel)."""
    folder = Path(results_dir)
    folder.mkdir(parents=True, exist_ok=True)
    keras_file = folder / f"{model_name}{RETRAINED_SUFFIX}"
    export_dir = folder / f"{model_name}{EXPORT_SUFFIX}"
    model.save(keras_file)
    model.export(str(export_dir), format="tf_saved_model", verbose=False)
    return {"model_file": str(keras_file), "export_dir": str(export_dir)}


def record_test(best: dict[str, Any], test: dict[str, Any], results_dir: str) -> Path:
    """Add ``test`` to the trial's JSON result (rewritten atomically; the rest is kept as it was)."""
    path = Path(results_dir) / f"{best['model_name']}{res.RESULT_SUFFIX}"
    try:
        result = json.loads(path.read_text()) if path.is_file() else dict(best)
    except (OSError, json.JSONDecodeError):
        result = dict(best)
    result["test"] = test
    return res.write_result(result, results_dir)


def describe(test: dict[str, Any]) -> str:
    coarse = test.get("coarse_accuracy")
    coarse_text = f", coarse {coarse:.4f}" if coarse is not None else ""
    return (f"test accuracy: fine {test['fine_accuracy']:.4f}{coarse_text} on {test['test_images']} "
            f"test images; saved {test.get('model_file')} and {test.get('export_dir')}")


# --- evaluating ---------------------------------------------------------------------------------

def evaluate_model(predict, test: Split) -> dict[str, Any]:
    """Fine (and coarse) accuracy of ``predict`` (images -> {head: probabilities}) on a test split."""
    correct = {"fine": 0, "coarse": 0}
    heads: set[str] = set()
    for start in range(0, len(test), EVAL_BATCH):
        outputs = predict(test.x[start:start + EVAL_BATCH].astype(np.float32))
        for head, labels in (("fine", test.fine), ("coarse", test.coarse)):
            if head in outputs and labels is not None:
                heads.add(head)
                predicted = np.argmax(np.asarray(outputs[head]), axis=-1)
                correct[head] += int(np.sum(predicted == labels[start:start + EVAL_BATCH]))
    return {"fine_accuracy": correct["fine"] / len(test),
            "coarse_accuracy": correct["coarse"] / len(test) if "coarse" in heads else None,
            "test_images": len(test)}


def _keras_predictor(model):
    return lambda x: model(x, training=False)


def load_predictor(path: str | Path):
    """A predict function for a ``.keras`` file or an exported SavedModel folder, and its fine classes."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path} not found: pass a .keras file or an exported model folder "
                             f"(python -m hks retrain-best writes both in the results folder)")
    try:
        if path.is_dir():
            import tensorflow as tf

            loaded = tf.saved_model.load(str(path))
            predict = loaded.serve
        else:
            import keras

            model = keras.saving.load_model(path, compile=False)
            predict = _keras_predictor(model)
        probe = predict(np.zeros((1, 32, 32, 3), np.float32))
    except Exception as exc:  # noqa: BLE001 - Keras and TensorFlow loaders raise many types
        raise ModelFileError(f"{path} is not a loadable Keras model or SavedModel export "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(probe, dict) or "fine" not in probe:
        raise ModelFileError(f"{path} has no 'fine' output: it is not a model built by hks")
    return predict, int(probe["fine"].shape[-1])


def evaluate_file(path: str | Path, settings: Settings) -> dict[str, Any]:
    """Test-set accuracy of a saved model; the dataset follows from its number of fine classes."""
    configure_threads(settings.threads)
    predict, classes = load_predictor(path)
    dataset = DATASET_BY_CLASSES.get(classes)
    if dataset is None:
        raise ModelFileError(f"{path} predicts {classes} classes; hks evaluates CIFAR-100 (100) or CIFAR-10 (10)")
    test = load_cifar(dataset, settings.data_dir, settings.download).test
    return {**evaluate_model(predict, test), "dataset": dataset, "model": str(path)}


# --- command line -------------------------------------------------------------------------------

def register_retrain(subparsers) -> None:
    parser = subparsers.add_parser(
        "retrain-best", help="retrain the best trial on train+validation, test it once, save and export it",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--from", dest="source", metavar="PATH_OR_URL", default=None,
                        help="results.pkl, a folder of JSON results or a store URL "
                             "(default: --trials-file when it exists, else --results-dir)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the epoch at which the trial's validation accuracy peaked)")
    config.add_arguments(parser, names=RETRAIN_SETTINGS)
    parser.set_defaults(func=retrain_command)


def retrain_command(args: argparse.Namespace) -> int:
    from hks.report.sources import default_source, load_source

    settings = config.resolve({k: v for k, v in vars(args).items() if k != "epochs"})
    results = load_source(args.source or default_source(settings), settings)
    retrain_best(settings, results, epochs=args.epochs)
    return 0


def register_evaluate(subparsers) -> None:
    parser = subparsers.add_parser("evaluate", help="test-set accuracy of a saved model",
                                   description="Test-set accuracy of a saved .keras model or exported model folder.")
    parser.add_argument("model", metavar="MODEL", help="a .keras file or an exported SavedModel folder")
    config.add_arguments(parser, names=EVALUATE_SETTINGS)
    parser.set_defaults(func=evaluate_command)


def evaluate_command(args: argparse.Namespace) -> int:
    figures = evaluate_file(args.model, config.resolve(args))
    coarse = figures["coarse_accuracy"]
    print(f"{figures['model']}: {figures['dataset']} test accuracy: fine {figures['fine_accuracy']:.4f}"
          + (f", coarse {coarse:.4f}" if coarse is not None else "") + f" ({figures['test_images']} images)")
    return 0
