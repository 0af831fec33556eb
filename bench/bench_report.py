"""What a report costs at scale: 10,000 trials written in under 30 s, under 20 MB, interactive within 3 s.

The trials are points of the classic space drawn by hyperopt (real hyperparameter values: categories,
None, log-scale numbers) with made-up learning curves of 8-30 epochs; 5 % failed and 10 % pruned
(a stand-in for a long search: only the report's cost is measured, never a figure of merit). The
baseline, measured in the same invocation and the same headless Chromium, is the page a user would
otherwise get: one Plotly scatter of the same trials (trial number against accuracy, with the
hyperparameters in the hover text) written by plotly's own ``write_html``.

    python bench/bench_report.py               # 1,000 and 10,000 trials (needs chromium)
    python bench/bench_report.py 200 2000      # other sizes

"Interactive" is the time from navigation until the page's script has drawn what it draws at once
and answers input (``window.hksReport.ready``), as measured by the page itself
(``performance.now()``): from 300 trials on, that is the history chart and the trials table (sortable,
filterable), and the other charts are drawn when scrolled to.
"every chart" is the time until all of them are drawn at once (what printing the page costs). Headless
Chromium here renders WebGL in software (SwiftShader), so WebGL charts (parallel coordinates, and
scatter plots beyond 1,500 points) draw much slower than in a browser with a GPU. It does not show
how smooth panning a 10,000-point chart feels, nor how the page behaves on a phone.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from hks.config import Settings  # noqa: E402
from hks.report import write_report  # noqa: E402
from hks.space import SPACE, sample_point  # noqa: E402

if TYPE_CHECKING:
    from chromium import Browser

LIMITS = {"write_s": 30.0, "size_mb": 20.0, "interactive_s": 3.0}


def synthetic_results(count: int, seed: int = 0) -> list[dict]:
    """``count`` trial results over real classic-space points, with made-up curves (timing only)."""
    rng = np.random.default_rng(seed)
    out = []
    for tid in range(count):
        point = sample_point(SPACE, seed * 1_000_003 + tid)
        epochs = int(rng.integers(8, 31))
        skill = float(rng.uniform(0.05, 0.6))
        grow = 1 - np.exp(-np.arange(1, epochs + 1) / rng.uniform(2, 8))
        val = np.clip(skill * grow + rng.normal(0, 0.01, epochs), 0.0, 1.0)
        history = {"fine_accuracy": list(np.clip(val * 1.15, 0, 1)), "val_fine_accuracy": list(val),
                   "fine_loss": list(4.6 * (1 - grow * skill)), "val_fine_loss": list(4.7 * (1 - grow * skill * 0.9)),
                   "coarse_accuracy": list(np.clip(val * 1.6, 0, 1)), "val_coarse_accuracy": list(val * 1.5)}
        started = 1.7e9 + tid * 60.0
        base = {"tid": tid, "space": point, "dataset": "cifar100", "started_at": started,
                "finished_at": started + 55.0, "train_seconds": 55.0, "model_name": f"model_{tid:05d}",
                "params": int(rng.integers(50_000, 5_000_000))}
        draw = rng.uniform()
        if draw < 0.05:
            out.append({**base, "status": "fail", "loss": None, "error": "ResourceExhaustedError: OOM",
                        "error_type": "ResourceExhaustedError", "history": {}})
        elif draw < 0.15:
            cut = max(1, epochs // 3)
            out.append({**base, "status": "pruned", "loss": -float(max(val[:cut])), "pruned_at_epoch": cut,
                        "epochs_run": cut, "history": {k: v[:cut] for k, v in history.items()}})
        else:
            out.append({**base, "status": "ok", "loss": -float(max(val)), "fine_best_accuracy": float(max(val)),
                        "coarse_best_accuracy": float(max(val) * 1.5), "epochs_run": epochs,
                        "best_epoch": int(np.argmax(val)) + 1, "history": history})
    return out


def plain_plotly_page(results: list[dict], path: Path) -> None:
    """The baseline: one Plotly scatter of the trials, hyperparameters in the hover text."""
    import plotly.graph_objects as go

    ok = [r for r in results if r["status"] == "ok"]
    text = ["<br>".join(f"{k}: {v}" for k, v in r["space"].items()) for r in ok]
    fig = go.Figure(go.Scattergl(x=[r["tid"] + 1 for r in ok], y=[-r["loss"] for r in ok], mode="markers", text=text))
    fig.write_html(path, include_plotlyjs=True, full_html=True,
                   post_script="window.hksReport = {ready: true, readyAt: performance.now()};")


def interactive_seconds(browser: Browser, page: Path, draw_all: bool = False) -> float:
    """Seconds from navigation to the page's first screen drawn (or to every chart drawn)."""
    browser.navigate(page.as_uri())
    browser.wait_for("window.hksReport && window.hksReport.ready && document.readyState === 'complete'", timeout=300)
    seconds = browser.evaluate("window.hksReport.readyAt") / 1000
    if draw_all:
        seconds = browser.evaluate("window.hksReport.drawAll && window.hksReport.drawAll(), performance.now()") / 1000
    browser.navigate("about:blank")
    return seconds


def timed(func: Callable[[], object]) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def measure(count: int, folder: Path, browser: Browser | None) -> dict[str, float]:
    results = synthetic_results(count)
    settings = Settings(dataset="cifar100", results_dir=str(folder / "results"), plots=False,
                        experiment_name="bench_report")
    out, base = folder / f"report_{count}", folder / f"plain_{count}.html"
    figures = {"trials": count,
               "write_s": timed(lambda: write_report(results, settings, out_dir=out)),
               "plain_write_s": timed(lambda: plain_plotly_page(results, base))}
    figures["size_mb"] = (out / "report.html").stat().st_size / 1e6
    figures["plain_size_mb"] = base.stat().st_size / 1e6
    if browser is not None:
        interactive_seconds(browser, out / "report.html")  # warm the browser's caches once
        figures["interactive_s"] = min(interactive_seconds(browser, out / "report.html") for _ in range(2))
        figures["plain_interactive_s"] = min(interactive_seconds(browser, base) for _ in range(2))
        figures["every_chart_s"] = interactive_seconds(browser, out / "report.html", draw_all=True)
        errors = browser.errors()
        figures["console_errors"] = len(errors)
        for error in errors[:5]:
            print(f"  console error: {error[:200]}")
    return figures


def main(sizes: list[int]) -> int:
    from chromium import Browser, chromium_executable

    exe = chromium_executable()
    if exe is None:
        print("chromium not found: only the write time and the size are measured")
    over = []
    with tempfile.TemporaryDirectory() as folder:
        browser = Browser(exe, 1400, 1000) if exe else None
        try:
            for count in sizes:
                f = measure(count, Path(folder), browser)
                print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in f.items()}))
                for key, limit in LIMITS.items():
                    if key not in f:
                        continue
                    ratio = f[key] / f["plain_" + key] if f.get("plain_" + key) else math.nan
                    verdict = "ok" if f[key] < limit else "OVER"
                    if verdict == "OVER":
                        over.append(f"{key} at {count} trials")
                    print(f"{count:>6} trials  {key:<14} {f[key]:8.2f} (limit {limit:g}: {verdict}); "
                          f"plain Plotly page {f['plain_' + key]:8.2f}, ratio {ratio:.2f}x")
        finally:
            if browser is not None:
                browser.close()
    print("over a limit: " + ", ".join(over) if over else "every figure within its limit")
    return 1 if over else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", type=int, nargs="*", default=[1000, 10_000], help="trial counts (default 1000 10000)")
    sys.exit(main(parser.parse_args().sizes))
