"""Resumable trials: a trial's training state after an epoch, so that a trial whose worker died
(kill -9, SIGTERM, a lost machine) goes on from its last epoch when it is tried again, instead of
training again from scratch.

One file per trial that is training, ``<results_dir>/checkpoints/<experiment>/trial_<n>.npz``,
replaced atomically after every ``--checkpoint-every`` epochs and removed once the trial's result
is recorded (a paused trial's stays: it resumes from it when promoted, ``--prune-pause``). It
holds the model's weights, the optimizer's variables (its step count and moments, so learning-rate
schedules go on where they stopped), the model's random seed states (so dropout draws the masks an
uninterrupted run would, not again those of the first epochs), the per-epoch history and early
stopping's state, as plain arrays and one JSON text. They are read back into a model rebuilt from the same
point, so any Keras builder resumes (no custom objects to deserialise). A file that belongs to
another point, seed or epoch budget, or whose arrays do not fit the rebuilt model, is ignored and
the trial starts afresh.

The training data's shuffles and augmentations go on too: the trial's pipeline is wound on past the
epochs done (:func:`hks.data.skip_epochs`) before training resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from hks.config import Settings

CHECKPOINT_DIR = "checkpoints"  # under --results-dir
FORMAT_VERSION = 1


def trial_checkpoint(settings: Settings, experiment: str, tid: int | None) -> Path | None:
    """Where trial ``tid`` of ``experiment`` keeps its checkpoint, or None when checkpoints are off."""
    if settings.checkpoint_every <= 0 or tid is None:
        return None
    return Path(settings.results_dir) / CHECKPOINT_DIR / _safe(experiment) / f"trial_{tid + 1}.npz"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "experiment"


def fingerprint(point: dict[str, Any], seed: int, epochs: int) -> str:
    """What a checkpoint must match to be resumed: the point, the trial's seed and its epoch budget."""
    text = json.dumps({"point": point, "seed": seed, "epochs": epochs}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Checkpoint:
    """A trial's state after ``epochs_done`` epochs (``history``: Keras's per-epoch logs)."""

    fingerprint: str
    history: dict[str, list[float]]
    stopping: dict[str, Any] = field(default_factory=dict)  # early stopping's wait, best, best_epoch, stopped;
    # pruned: the pruned result's fields when the pruner stopped it
    weights: list[np.ndarray] = field(default_factory=list)
    optimizer: list[np.ndarray] = field(default_factory=list)
    best_weights: list[np.ndarray] = field(default_factory=list)  # early stopping's, with --save-models
    seeds: list[np.ndarray] = field(default_factory=list)  # random seed states (none in checkpoints before them)
    seconds: float = 0.0  # training time of the epochs done, over every attempt (a result reports the sum)

    @property
    def epochs_done(self) -> int:
        return max((len(values) for values in self.history.values()), default=0)

    @property
    def finished(self) -> bool:
        """Whether it had stopped (early stopping, or the pruner) before its result was recorded."""
        return bool(self.stopping.get("stopped") or self.stopping.get("pruned"))

    def epoch_logs(self) -> list[dict[str, float]]:
        """The logs of each epoch done, in order (what Keras handed the callbacks)."""
        return [{key: values[e] for key, values in self.history.items() if e < len(values)}
                for e in range(self.epochs_done)]


def save(path: Path, checkpoint: Checkpoint) -> None:
    """Write atomically: a trial killed while writing leaves the previous checkpoint whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"version": FORMAT_VERSION, "fingerprint": checkpoint.fingerprint, "history": checkpoint.history,
            "stopping": checkpoint.stopping, "seconds": checkpoint.seconds}
    arrays = {"meta": np.array(json.dumps(meta))}
    for prefix, values in (("w", checkpoint.weights), ("o", checkpoint.optimizer), ("b", checkpoint.best_weights),
                           ("s", checkpoint.seeds)):
        arrays.update({f"{prefix}{i}": np.asarray(value) for i, value in enumerate(values)})
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with open(partial, "wb") as out:
        np.savez(out, **arrays)
    os.replace(partial, path)


def load(path: Path | None, expected: str) -> tuple[Checkpoint | None, str]:
    """The checkpoint at ``path`` when it belongs to this trial, and a note when one was set aside."""
    if path is None or not path.exists():
        return None, ""
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            lists = {prefix: _numbered(data, prefix) for prefix in "wobs"}
    except (OSError, ValueError, KeyError) as exc:
        return None, f"unreadable checkpoint {path.name} set aside ({type(exc).__name__})"
    if meta.get("version") != FORMAT_VERSION or meta.get("fingerprint") != expected:
        return None, f"checkpoint {path.name} is of another point, seed or --epochs; starting afresh"
    return Checkpoint(meta["fingerprint"], meta["history"], meta.get("stopping") or {}, lists["w"], lists["o"],
                      lists["b"], lists["s"], float(meta.get("seconds") or 0.0)), ""


def _numbered(data: Any, prefix: str) -> list[np.ndarray]:
    count = sum(1 for name in data.files if name.startswith(prefix) and name[len(prefix):].isdigit())
    return [data[f"{prefix}{i}"] for i in range(count)]


def remove(path: Path | None) -> None:
    """Forget a trial's checkpoint (its result is recorded); the experiment's folder goes when empty."""
    if path is None:
        return
    path.unlink(missing_ok=True)
    try:
        path.parent.rmdir()
    except OSError:
        pass  # other trials' checkpoints are still there


def kept_note(settings: Settings, experiment: str) -> str | None:
    """A line on the checkpoints a finished search keeps (its paused trials'), or None when there are none.

    They stay so that the same search run again with a larger ``--max-evals`` can still promote them."""
    folder = Path(settings.results_dir) / CHECKPOINT_DIR / _safe(experiment)
    files = list(folder.glob("trial_*.npz"))
    if not files:
        return None
    size = sum(path.stat().st_size for path in files) / 2**20
    return (f"{len(files)} paused trials keep their checkpoints in {folder} ({size:.1f} MiB), so that a longer "
            "search (a larger --max-evals) can still resume them; delete the folder to free the space")


def capture(model: Any, fingerprint_: str, history: dict[str, list[float]], stopping: dict[str, Any],
            best_weights: list[np.ndarray] | None = None, seconds: float = 0.0) -> Checkpoint:
    """The state of a model being trained (its optimizer built by the first step)."""
    return Checkpoint(fingerprint_, history, stopping, [np.asarray(w) for w in model.get_weights()],
                      [np.asarray(v) for v in model.optimizer.variables], list(best_weights or []),
                      [np.asarray(v) for v in seed_states(model)], seconds)


def seed_states(model: Any) -> list[Any]:
    """The model's variables that are not weights: Keras's seed generator states (dropout and other random
    layers), which ``get_weights`` leaves out. Left behind, a resumed trial would draw its first epochs'
    dropout masks again, on its first epochs' batches: a replay the model has already fitted."""
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def restore(model: Any, checkpoint: Checkpoint) -> bool:
    """Put the checkpoint's weights, optimizer and seed states into a freshly built, compiled ``model``;
    False (nothing changed) when they do not fit it. A checkpoint without seed states (written before
    they were saved) leaves the model's as they are."""
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    seeds = seed_states(model) if checkpoint.seeds else []
    if not (_fits(model.get_weights(), checkpoint.weights) and _fits(optimizer.variables, checkpoint.optimizer)
            and _fits(seeds, checkpoint.seeds)):
        return False
    model.set_weights(checkpoint.weights)
    for variable, value in zip([*optimizer.variables, *seeds], [*checkpoint.optimizer, *checkpoint.seeds]):
        variable.assign(value)
    return True


def _fits(current: list[Any], saved: list[np.ndarray]) -> bool:
    return len(current) == len(saved) and all(tuple(c.shape) == s.shape for c, s in zip(current, saved))
