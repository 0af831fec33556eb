"""``python -m hks autolr`` and ``--base-lr auto``: the autoHyper learning-rate scan on real training.

Runs :func:`hks.autolr.rules.scan` with :func:`hks.autolr.trial.run_lr_trial` as the response and
writes, after every trial, ``<results_dir>/autolr/lrrt.csv`` (lr, Z, decision) and
``autolr_trials.json`` (every trial's per-epoch metrics and per-layer knowledge gains). Measured
learning rates are reused when a scan with the same setup runs again, so an interrupted scan
resumes where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hks import results as res
from hks.autolr.rules import ScanConfig, Step, scan
from hks.autolr.trial import TrialSetup, run_lr_trial
from hks.config import Settings, is_auto
from hks.errors import ConfigError
from hks.space import BASE_LEARNING_RATE, SPACE, demo_point

LRRT_FILE = "lrrt.csv"
TRIALS_FILE = "autolr_trials.json"
OUTPUT_FOLDER = "autolr"


@dataclass(frozen=True)
class AutoLRResult:
    chosen_lr: float
    stop_reason: str
    trials: int
    output_dir: Path
    learned: bool = True  # some rate made a conv layer learn (Z < 1); else the choice means nothing


def scan_config(settings: Settings) -> ScanConfig:
    return ScanConfig(min_lr=settings.autolr_min_lr, max_lr=settings.autolr_max_lr,
                      num_lrs=settings.autolr_num_lrs, max_trials=settings.autolr_max_trials)


def load_point(path: str) -> dict[str, Any]:
    """A space point from a JSON file: the point itself, or a trial result (its ``space`` field)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--point {path}: cannot read a JSON space point ({exc})") from None
    point = data.get("space", data) if isinstance(data, dict) else None
    missing = [key for key in SPACE if not isinstance(point, dict) or key not in point]
    if missing:
        raise ConfigError(f"--point {path} is not a space point (missing {', '.join(missing[:3])}): "
                          "give a point dict or a trial result JSON")
    return point


def trial_setup(settings: Settings, point: dict[str, Any] | None = None, verbose: bool = True) -> TrialSetup:
    from hks.objective import configure_tensorflow, splits_for

    if settings.autolr_epochs < 1:
        raise ConfigError(f"--epochs-per-trial must be >= 1, got {settings.autolr_epochs}")
    configure_tensorflow(settings)
    point = point if point is not None else (load_point(settings.autolr_point) if settings.autolr_point
                                             else demo_point())
    return TrialSetup(point=point, splits=splits_for(settings), optimizer=settings.autolr_optimizer or
                      point["optimizer"], epochs=settings.autolr_epochs, seed=settings.seed,
                      augment_crop=settings.augment_crop, verbose=verbose)


def setup_key(settings: Settings, setup: TrialSetup) -> str:
    """What the measured Z values depend on; a saved scan is reused only when this matches."""
    parts = {"point": setup.point, "optimizer": setup.optimizer, "epochs": setup.epochs, "seed": setup.seed,
             "dataset": settings.dataset, "dataset_size": settings.dataset_size,
             "val_fraction": settings.val_fraction, "augment_crop": settings.augment_crop}
    return hashlib.sha256(json.dumps(res.to_jsonable(parts), sort_keys=True).encode()).hexdigest()[:16]


class ScanFiles:
    """lrrt.csv and autolr_trials.json, rewritten atomically after every step."""

    def __init__(self, folder: Path, key: str):
        self.folder = folder
        self.key = key
        self.steps: list[Step] = []
        self.trials: list[dict[str, Any]] = self._previous_trials()

    def _previous_trials(self) -> list[dict[str, Any]]:
        try:
            data = json.loads((self.folder / TRIALS_FILE).read_text())
        except (OSError, json.JSONDecodeError):
            return []
        return list(data.get("trials", [])) if data.get("setup_key") == self.key else []

    def known(self) -> dict[float, float]:
        return {float(t["lr"]): float(t["Z"]) for t in self.trials}

    def add_trial(self, record: dict[str, Any]) -> None:
        self.trials = [t for t in self.trials if t["lr"] != record["lr"]] + [record]

    def write(self, summary: dict[str, Any] | None = None) -> None:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["lr", "Z", "decision"])
        for step in self.steps:
            writer.writerow([repr(step.lr), "" if step.z is None else f"{step.z:.6f}", step.decision])
        res.atomic_write_bytes(self.folder / LRRT_FILE, text.getvalue().encode())
        data = {"setup_key": self.key, "trials": self.trials, **(summary or {})}
        res.atomic_write_bytes(self.folder / TRIALS_FILE,
                               json.dumps(res.to_jsonable(data), indent=1, sort_keys=True).encode())


def run_autolr(settings: Settings, point: dict[str, Any] | None = None, verbose: bool = True) -> AutoLRResult:
    """Scan learning rates with autoHyper on ``settings``' data and return the chosen one."""
    config = scan_config(settings)
    config.validate()
    setup = trial_setup(settings, point, verbose)
    folder = Path(settings.results_dir) / OUTPUT_FOLDER
    files = ScanFiles(folder, setup_key(settings, setup))
    started = time.perf_counter()
    print(f"autolr: scanning {config.num_lrs} learning rates in [{config.min_lr:g}, {config.max_lr:g}] "
          f"({setup.optimizer}, {setup.epochs} epochs per trial, at most {config.max_trials} trials)", flush=True)

    trained = len(files.known())  # a resumed scan numbers its trials after the earlier run's, as its cap counts them

    def evaluate(lr: float) -> float:
        nonlocal trained
        trained += 1
        if verbose:
            print(f"autolr trial {trained}/{config.max_trials}: training at lr {lr:.4g}", flush=True)
        record = run_lr_trial(lr, setup)
        files.add_trial(record)
        return record["Z"]

    def on_step(step: Step) -> None:
        files.steps.append(step)
        files.write()
        print(_step_line(step, config.max_trials), flush=True)

    outcome = scan(evaluate, config, on_step=on_step, known=files.known())
    summary = {"chosen_lr": outcome.chosen_lr, "stop_reason": outcome.stop_reason, "trials_run": outcome.trials,
               "seconds": round(time.perf_counter() - started, 3)}
    files.write(summary)
    learned = not all(math.isclose(z, 1.0) for z in outcome.measured.values())
    if not learned:
        print("autolr: warning: no learning rate made any conv layer learn (Z = 1 everywhere); try more epochs "
              "per trial or a higher highest rate (autolr: --epochs-per-trial, --max-lr; a search: "
              "--autolr-epochs, --autolr-max-lr)", flush=True)
    print(f"autolr: chose learning rate {outcome.chosen_lr:.6g} ({outcome.stop_reason}, "
          f"{outcome.trials} trials trained); log in {folder / LRRT_FILE}", flush=True)
    return AutoLRResult(outcome.chosen_lr, outcome.stop_reason, outcome.trials, folder, learned)


def _step_line(step: Step, cap: int) -> str:
    if step.decision == "chosen":
        return f"autolr: chosen lr {step.lr:.6g}"
    if step.z is None:
        return f"autolr: {step.decision} at lr {step.lr:.4g}"
    where = "cached" if step.cached else f"trial {step.trial}/{cap}"
    return f"autolr {where}: lr {step.lr:.4g}  Z {step.z:.3f}  -> {step.decision}"


def calibrate_base_lr(settings: Settings) -> float:
    """The base learning rate of a search: ``--base-lr`` as given, or autoHyper's choice for 'auto'."""
    if not is_auto(settings.base_lr):
        return float(settings.base_lr)
    result = run_autolr(settings)
    if not result.learned:  # Z = 1 everywhere ranks no rate above another: its pick would be arbitrary
        print(f"autolr: so the search keeps the default base learning rate {BASE_LEARNING_RATE:g}", flush=True)
        return BASE_LEARNING_RATE
    return result.chosen_lr
