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
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hks import config
from hks import results as res
from hks.config import SEARCH_DATA_SETTINGS, Settings
from hks.data import Split, Splits, class_names, load_cifar, make_dataset, point_augmentation
from hks.errors import ConfigError, HksError
from hks.model import build_model
from hks.objective import (
    configure_tensorflow,
    epoch_progress_callback,
    require_tensorboard,
    splits_for,
    tensorboard_callback,
)
from hks.space import missing_keys

if TYPE_CHECKING:
    import keras

Predict = Callable[[np.ndarray], dict[str, Any]]  # images to each head's probabilities
RETRAINED_SUFFIX = "_retrained.keras"
EXPORT_SUFFIX = "_export"
EVAL_BATCH = 256
DATASET_BY_CLASSES = {100: "cifar100", 10: "cifar10"}
RETRAIN_SETTINGS = ("data_dir", "download", "dataset_size", "val_fraction", "augment_crop", "threads", "seed",
                    "results_dir", "trials_file", "experiment_name", "tensorboard", "base_lr", "verbose")
EVALUATE_SETTINGS = ("data_dir", "download", "threads", "verbose")


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
                 verbose: bool = True, build: Callable[..., Any] | None = None) -> dict[str, Any]:
    """Retrain the best of ``results``, test it, save ``.keras`` + export; returns the ``test`` record.
    ``build``: the model builder of a ``keras_objective`` search (hks's own builds the others)."""
    best = res.best_result(results)
    if best is None:
        raise NoBestTrialError(f"no successful trial among {len(results)} result(s): nothing to retrain; "
                               "run a search first (python -m hks search) or pass --from with its results")
    if build is None and missing_keys(best.get("space") or {}):
        raise HksError(f"{best['model_name']} was trained by a model builder of your own (hks.keras_objective), "
                       "which retrain-best cannot rebuild: from Python, call hks.retrain.retrain_best(settings, "
                       "results, build=your_builder)")
    settings = settings.replace(dataset=best.get("dataset") or settings.dataset)
    n_epochs = retrain_epochs(best, epochs, settings)
    configure_tensorflow(settings)
    require_tensorboard(settings)
    splits = splits_for(settings)
    train = pooled(splits)
    if verbose:
        print(f"retraining {best['model_name']} (validation fine accuracy {-best['loss']:.4f}) on "
              f"{len(train)} train+validation images for {n_epochs} epoch(s)", flush=True)
    started = time.time()
    model = _fit(best, train, splits, settings, n_epochs, verbose, build)
    figures = evaluate_model(_keras_predictor(model), splits.test)
    paths = save_model(model, settings.results_dir, best["model_name"])
    test = {**figures, "epochs": n_epochs, "train_images": len(train), "dataset": settings.dataset,
            **paths, "retrained_at": time.time(), "retrain_seconds": round(time.time() - started, 3)}
    record_test(best, test, settings.results_dir)
    if verbose:
        print(describe(test), flush=True)
    return test


def _fit(best: dict[str, Any], train: Split, splits: Splits, settings: Settings, epochs: int, verbose: bool,
         build: Callable[..., Any] | None = None) -> keras.Model:
    import keras

    point = best["space"]
    keras.utils.set_random_seed(int(best.get("seed") or settings.seed))
    batch_size = int(point.get("batch_size") or 128)
    if build is not None:
        model = build(point, splits.spec.num_fine, splits.spec.num_coarse)
    else:  # a modern point's learning-rate schedule spans the retraining's steps; its crops and cutout apply too
        model = build_model(point, splits.spec.num_fine, splits.spec.num_coarse,
                            base_lr=trial_base_lr(best, settings),
                            train_steps=epochs * math.ceil(len(train) / batch_size))
    data = make_dataset(train, batch_size, training=True, seed=settings.seed, threads=settings.threads,
                        **point_augmentation(point, settings.augment_crop))
    callbacks = [epoch_progress_callback(settings.replace(epochs=epochs), None, verbose)]  # stops on a NaN loss
    if settings.tensorboard:
        callbacks.append(tensorboard_callback(settings, f"retrain_{best['model_name']}", point))
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


def save_model(model: keras.Model, results_dir: str, model_name: str) -> dict[str, str]:
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

def predict_split(predict: Predict, test: Split) -> dict[str, np.ndarray]:
    """Each head's probabilities for every image of ``test`` (``predict``: images -> {head: probabilities})."""
    chunks: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(test), EVAL_BATCH):
        outputs = predict(test.x[start:start + EVAL_BATCH].astype(np.float32))
        for head in ("fine", "coarse"):
            if head in outputs:
                chunks.setdefault(head, []).append(np.asarray(outputs[head], dtype=np.float64))
    return {head: np.concatenate(parts) for head, parts in chunks.items()}


def head_figures(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Cross-entropy loss, top-1 and top-5 accuracy of one head."""
    picked = probabilities[np.arange(len(labels)), labels]
    top5 = np.argsort(-probabilities, axis=-1)[:, :5]
    return {"loss": float(np.mean(-np.log(np.clip(picked, 1e-12, 1.0)))),
            "accuracy": float(np.mean(np.argmax(probabilities, axis=-1) == labels)),
            "top5_accuracy": float(np.mean(np.any(top5 == labels[:, None], axis=-1)))}


def per_class_accuracy(predicted: np.ndarray, labels: np.ndarray, classes: int) -> list[float | None]:
    """Accuracy on each class's test images (None for a class without any)."""
    out: list[float | None] = []
    for cls in range(classes):
        mask = labels == cls
        out.append(float(np.mean(predicted[mask] == cls)) if mask.any() else None)
    return out


def evaluate_model(predict: Predict, test: Split) -> dict[str, Any]:
    """Loss, top-1 and top-5 accuracy per head and per-class fine accuracy of ``predict`` on a test split."""
    return figures_of(predict_split(predict, test), test)


def figures_of(probabilities: dict[str, np.ndarray], test: Split) -> dict[str, Any]:
    """:func:`evaluate_model`'s figures from the heads' probabilities."""
    figures: dict[str, Any] = {"test_images": len(test), "coarse_accuracy": None}
    for head, labels in (("fine", test.fine), ("coarse", test.coarse)):
        if head in probabilities and labels is not None:
            figures.update({f"{head}_{k}": v for k, v in head_figures(probabilities[head], labels).items()})
    fine = probabilities["fine"]
    figures["fine_per_class_accuracy"] = per_class_accuracy(np.argmax(fine, axis=-1), test.fine, fine.shape[-1])
    return figures


def confusion_matrix(predicted: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def draw_confusion(matrix: np.ndarray, names: list[str], path: str | Path, title: str) -> Path:
    """The row-normalised confusion matrix as a PNG (class names on the axes)."""
    from matplotlib.figure import Figure

    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=float), where=rows > 0)
    size = 4 + 0.12 * len(names)
    fig = Figure(figsize=(size + 1.5, size), dpi=100)
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="viridis", vmin=0, vmax=1)
    ticks = np.arange(len(names))
    font = 8 if len(names) <= 20 else 5
    ax.set_xticks(ticks, names, rotation=90, fontsize=font)
    ax.set_yticks(ticks, names, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class's test images")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _keras_predictor(model: keras.Model) -> Predict:
    return lambda x: model(x, training=False)


def load_predictor(path: str | Path) -> tuple[Predict, int]:
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


def evaluate_file(path: str | Path, settings: Settings, confusion: str | Path | None = None) -> dict[str, Any]:
    """Test-set figures of a saved model; the dataset follows from its number of fine classes.

    With ``confusion``, the fine head's confusion matrix is drawn there too.
    """
    configure_tensorflow(settings)
    predict, classes = load_predictor(path)
    dataset = DATASET_BY_CLASSES.get(classes)
    if dataset is None:
        raise ModelFileError(f"{path} predicts {classes} classes; hks evaluates CIFAR-100 (100) or CIFAR-10 (10)")
    test = load_cifar(dataset, settings.data_dir, settings.download).test
    probabilities = predict_split(predict, test)
    figures = {**figures_of(probabilities, test), "dataset": dataset, "model": str(path),
               "class_names": class_names(dataset, settings.data_dir, settings.download)}
    if confusion:
        matrix = confusion_matrix(np.argmax(probabilities["fine"], axis=-1), test.fine, classes)
        figures["confusion_file"] = str(draw_confusion(matrix, figures["class_names"], confusion,
                                                       f"{Path(path).name} on the {dataset} test set"))
    return figures


def describe_evaluation(figures: dict[str, Any]) -> list[str]:
    """The lines ``evaluate`` prints: a summary, each head's figures, the classes from worst to best."""
    coarse = figures["coarse_accuracy"]
    lines = [f"{figures['model']}: {figures['dataset']} test accuracy: fine {figures['fine_accuracy']:.4f}"
             + (f", coarse {coarse:.4f}" if coarse is not None else "") + f" ({figures['test_images']} images)"]
    for head in ("fine", "coarse"):
        if figures.get(f"{head}_accuracy") is not None:
            lines.append(f"  {head:6s} loss {figures[f'{head}_loss']:.4f}  top-1 {figures[f'{head}_accuracy']:.4f}"
                         f"  top-5 {figures[f'{head}_top5_accuracy']:.4f}")
    names = figures["class_names"]
    ranked = sorted((acc, names[i]) for i, acc in enumerate(figures["fine_per_class_accuracy"]) if acc is not None)
    lines.append("  per-class fine accuracy, worst first:")
    cells = [f"{name} {acc:.2f}" for acc, name in ranked]
    for start in range(0, len(cells), 6):
        lines.append("    " + "  ".join(cells[start:start + 6]))
    if figures.get("confusion_file"):
        lines.append(f"  confusion matrix: {figures['confusion_file']}")
    return lines


# --- command line -------------------------------------------------------------------------------

def register_retrain(subparsers: argparse._SubParsersAction) -> None:
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
    from hks.report.sources import default_source, load_source, search_settings

    cli = {k: v for k, v in vars(args).items() if k != "epochs"}
    settings = config.resolve(cli)
    source = args.source or default_source(settings)
    settings, taken = retrain_settings(cli, search_settings(source, settings))
    if taken:
        print(f"retraining on the data the search used: {taken}", flush=True)
    results = load_source(source, settings)
    test = retrain_best(settings, results, epochs=args.epochs)
    from hks.report import safe_write_report

    print(safe_write_report(results, settings.replace(dataset=test["dataset"])), flush=True)
    return 0


def retrain_settings(cli: dict[str, Any], saved: dict[str, Any],
                     environ: dict[str, str] | None = None) -> tuple[Settings, str]:
    """The settings to retrain with: the search's saved data settings (:data:`hks.config.SEARCH_DATA_SETTINGS`)
    unless a flag or an environment variable sets them; and, as flags, the saved ones taken that differ
    from the defaults (empty if none), so that the console says which data it retrains on."""
    fallback = {name: saved.get(name) for name in SEARCH_DATA_SETTINGS}
    settings, defaults = config.resolve(cli, environ, fallback), Settings()
    taken = [name for name in SEARCH_DATA_SETTINGS if fallback[name] is not None
             and getattr(settings, name) == fallback[name] != getattr(defaults, name)]
    return settings, " ".join(config.as_flags(settings, taken))


def register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("evaluate", help="test-set loss, top-1/top-5 and per-class accuracy of a model",
                                   description="Test-set loss, top-1 and top-5 accuracy and per-class accuracy of a "
                                               "saved .keras model or exported model folder.")
    parser.add_argument("models", metavar="MODEL", nargs="+", help="a .keras file or an exported SavedModel folder")
    parser.add_argument("--confusion", metavar="PNG", default=None,
                        help="also draw the fine head's confusion matrix into this PNG file "
                             "(with several models: one file each, named after the model)")
    config.add_arguments(parser, names=EVALUATE_SETTINGS)
    parser.set_defaults(func=evaluate_command)


IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")  # what matplotlib writes, by the file's suffix


def check_image_path(path: str | Path, flag: str) -> None:
    """Refuse, before any work, a picture path that matplotlib could not write (or would write elsewhere)."""
    path = Path(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(f"{flag} {path}: give an image file name ending in {', '.join(IMAGE_SUFFIXES[:-1])}")
    blocking = next((parent for parent in path.parents if parent.exists()), None)
    if path.is_dir() or (blocking is not None and not blocking.is_dir()):
        raise ConfigError(f"{flag} {path}: {path if path.is_dir() else blocking} is in the way (a folder where the "
                          "file should be, or a file where a folder should be); give another file name")


def evaluate_command(args: argparse.Namespace) -> int:
    settings = config.resolve({k: v for k, v in vars(args).items() if k not in ("confusion", "models")})
    if args.confusion:
        check_image_path(args.confusion, "--confusion")
    for model in args.models:
        confusion = args.confusion
        if confusion and len(args.models) > 1:
            confusion = Path(confusion).with_name(f"{Path(confusion).stem}_{Path(model).stem}.png")
        print("\n".join(describe_evaluation(evaluate_file(model, settings, confusion=confusion))), flush=True)
    return 0
