"""How much a report costs a search: report time against the time of one real trial, measured together.

Runs 4 real 1-epoch trials of a small CNN on 1,000 CIFAR-10 mini images (the baseline: the mean trial
time), then times ``write_report`` on those 4 results, with and without the architecture picture, and
on 100 results made by replicating the 4 real ones with jittered hyperparameters (a stand-in for a
long search: only the report's time is measured on them, never a figure of merit).

    python bench/bench_report.py            # needs ../shared/data/cifar-10-mini beside the project
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hks.config import Settings  # noqa: E402
from hks.objective import run_trial, splits_for  # noqa: E402
from hks.report import write_report  # noqa: E402
from hks.space import demo_point  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar-10-mini"
POINT = {**demo_point(), "use_BN": False, "residual": None, "conv_hiddn_units_mult": 0.5, "fc_units_1_mult": 0.1,
         "batch_size": 64.0}
N_REAL, N_LONG = 4, 100


def replicate(results: list[dict], count: int, seed: int = 0) -> list[dict]:
    """``count`` copies of the real results with jittered numeric hyperparameters (timing only)."""
    rng = np.random.default_rng(seed)
    out = []
    for tid in range(count):
        result = copy.deepcopy(results[tid % len(results)])
        result["tid"] = tid
        result["space"] = {k: v * rng.uniform(0.7, 1.3) if isinstance(v, float) else v
                           for k, v in result["space"].items()}
        result["loss"] = result["loss"] * rng.uniform(0.8, 1.2)
        out.append(result)
    return out


def timed(label: str, func) -> float:
    started = time.perf_counter()
    func()
    seconds = time.perf_counter() - started
    print(f"{label:<48} {seconds:8.2f} s", flush=True)
    return seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(dataset="cifar10", data_dir=str(DATA), download=False, epochs=1, threads=1,
                            dataset_size=1000, results_dir=str(Path(folder) / "results"), plots=False)
        splits = splits_for(settings)
        results, times = [], []
        for tid, lr in enumerate(np.linspace(0.6, 1.6, N_REAL)):
            print(f"trial {tid + 1}/{N_REAL} ...", flush=True)
            started = time.perf_counter()
            results.append(run_trial({**POINT, "lr_rate_mult": float(lr)}, settings, splits=splits, tid=tid,
                                     verbose=False))
            times.append(time.perf_counter() - started)
        baseline = float(np.mean(times[1:]))  # the first trial pays TensorFlow's warm-up
        print(f"{'baseline: one real trial (mean of trials 2-4)':<48} {baseline:8.2f} s")
        out = Path(folder) / "out"
        plain = timed(f"report, {N_REAL} trials, no architecture",
                      lambda: write_report(results, settings, out_dir=out))
        drawn = timed(f"report, {N_REAL} trials, with architecture",
                      lambda: write_report(results, settings.replace(plots=True), out_dir=out / "a"))
        long = timed(f"report, {N_LONG} trials, no architecture",
                     lambda: write_report(replicate(results, N_LONG), settings, out_dir=out / "b"))
        for label, seconds in (("4 trials", plain), ("4 trials + architecture", drawn), ("100 trials", long)):
            print(f"ratio report/trial ({label}): {seconds / baseline:.2f}x")


if __name__ == "__main__":
    main()
