"""The search report: from a real 4-trial search (results.pkl, JSON folder, job store), empty and
all-failed searches, text escaping, and a real headless Chromium rendering the page."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hyperopt import hp
from store_fixtures import postgres_url, unique_exp_key

from hks import results as res
from hks.cli import main
from hks.config import Settings
from hks.objective import run_trial, save_result, splits_for
from hks.plotting import GRAPHVIZ_MISSING, graphviz_available
from hks.report import safe_write_report, write_report
from hks.report.frame import make_axis, results_frame
from hks.report.sources import load_trials_pickle
from hks.space import demo_point
from hks.study import Study

# The classic keys with a small fixed architecture and four free knobs: numeric (log), categorical,
# and "None or a number" (one_more_fc), so every kind of axis shows up in the report.
SMALL_SPACE = {
    **demo_point(),
    "conv_hiddn_units_mult": 0.2, "fc_units_1_mult": 0.05, "residual": None, "first_conv": None,
    "batch_size": 64, "use_BN": False,
    "lr_rate_mult": hp.loguniform("lr_rate_mult", -0.5, 0.5),
    "optimizer": hp.choice("optimizer", ["Adam", "RMSprop"]),
    "pooling_type": hp.choice("pooling_type", ["max", "avg"]),
    "one_more_fc": hp.choice("one_more_fc", [None, hp.loguniform("fc_units_2_mult", -3.5, -2.5)]),
}
PICTURES = {"Optimisation history", "Importance", "Scatter-plot matrix", "Learning curves",
            "Parallel coordinates", "Slice plots"}
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]+)"')


def _settings(folder: Path, data_dir: Path, **changes) -> Settings:
    return Settings(data_dir=str(data_dir), download=False, epochs=2, patience=2, threads=1, max_evals=4,
                    algo="rand", results_dir=str(folder / "results"), trials_file=str(folder / "results.pkl"),
                    experiment_name="report_test", plots=False).replace(**changes)


@pytest.fixture(scope="module")
def search(tmp_path_factory, cifar10_dir) -> Settings:
    """A real 4-trial hyperopt search on 1,000 images of the CIFAR-10 mini archive (2 epochs per trial).

    CIFAR-10 rather than CIFAR-100: its mini archive is big enough for the trials' accuracies to differ,
    which the importance, the colours and the best-so-far line need to mean anything.
    """
    settings = _settings(tmp_path_factory.mktemp("search"), cifar10_dir, dataset="cifar10", dataset_size=1000)
    with Study(settings, space=SMALL_SPACE) as study:
        results = study.optimize()
    assert len(results) == 4 and all(r["status"] == "ok" for r in results)
    assert len({r["loss"] for r in results}) > 1
    return settings


def _report_args(settings: Settings, source, out: Path) -> list[str]:
    return ["report", "--from", str(source), "--out", str(out), "--results-dir", settings.results_dir,
            "--experiment-name", settings.experiment_name, "--plots" if settings.plots else "--no-plots"]


def _images(page: str) -> dict[str, bytes]:
    return {alt: base64.b64decode(data) for data, alt in IMG.findall(page)}


def _check_png(data: bytes) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.width > 200 and image.height > 150
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or range(2)) > 1  # not one flat colour


def test_report_from_results_pkl_shows_every_picture_and_the_best_model(search, tmp_path, capsys):
    out = tmp_path / "out"
    settings = search.replace(plots=True)
    assert main(_report_args(settings, settings.trials_file, out)) == 0
    assert "report: 4 trial(s), 4 succeeded" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    images = _images(page)
    expected = PICTURES | ({"Architecture of the best model"} if graphviz_available() else set())
    assert set(images) == expected
    for data in images.values():
        _check_png(data)
    assert len(list((out / "report").glob("*.png"))) == len(images)  # the PNGs are beside the page too
    if not graphviz_available():
        assert GRAPHVIZ_MISSING in page
    results = load_trials_pickle(Path(settings.trials_file))
    assert {r["base_lr"] for r in results} == {float(settings.base_lr)}  # what retrain-best needs
    best = res.best_result(results)
    assert f"Best: {best['model_name']} (trial {best['tid'] + 1}), validation fine accuracy {-best['loss']:.4f}" in page
    assert "RandomForestRegressor" in page and "permutation" in page.lower()
    top_table = page.split('id="top"')[1]
    assert all(r["model_name"] in top_table for r in results)
    assert "http://" not in page and "https://" not in page  # opens offline: nothing external
    assert 'id="failed"' not in page


def test_report_from_json_folder_lists_a_failed_trial_with_its_error_escaped(search, tmp_path):
    results_dir = tmp_path / "results"
    shutil.copytree(search.results_dir, results_dir, ignore=shutil.ignore_patterns("report*"))
    settings = search.replace(results_dir=str(results_dir))
    bad = {**demo_point(), "optimizer": "<b>NoSuchOptimizer</b>"}
    failed = run_trial(bad, settings, tid=99, verbose=False)
    assert failed["status"] == "fail"
    save_result(failed, settings.results_dir)  # as whoever completes a trial does
    assert main(_report_args(settings, results_dir, tmp_path / "out")) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert "5 trial(s): 4 succeeded, 1 failed" in page
    failed_section = page.split('id="failed"')[1]
    assert "&lt;b&gt;NoSuchOptimizer&lt;/b&gt;" in failed_section and "<b>NoSuchOptimizer" not in page
    assert "SpaceError" in failed_section
    best = res.best_result(load_trials_pickle(Path(search.trials_file)))
    assert f"Best: {best['model_name']}" in page  # the same winner, whatever the file order
    assert set(_images(page)) == PICTURES


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_report_from_a_job_store_url(search, tmp_path, capsys, kind):
    from hks.store import open_store
    from hks.store import protocol as p

    url = f"sqlite:///{tmp_path / 'store.sqlite3'}" if kind == "sqlite" else postgres_url()
    search = search.replace(experiment_name=unique_exp_key("report"))
    results = load_trials_pickle(Path(search.trials_file))
    with open_store(url) as store:  # the trials, completed through the store protocol as workers do
        store.put_experiment(p.Experiment(search.experiment_name, "f" * 16, "hks.space", "hks.objective:run_trial",
                                          search.to_dict()))
        store.insert_jobs([p.Job(search.experiment_name, r["tid"]) for r in results])
        for result in results:
            store.complete(store.reserve(search.experiment_name, "worker-1", 60.0), result)
    assert main(_report_args(search, url, tmp_path / "out")) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert "4 trial(s): 4 succeeded, 0 failed" in page
    assert set(_images(page)) == PICTURES
    capsys.readouterr()
    assert main(_report_args(search.replace(experiment_name="nope"), url, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert "has no experiment 'nope'" in err and len(err.splitlines()) == 1


def test_empty_results_folder_gives_a_page_that_says_so(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    settings = _settings(tmp_path, tmp_path)
    assert main(_report_args(settings, tmp_path / "results", tmp_path / "out")) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert "No finished trial in" in page and "<img" not in page
    assert "report: 0 trial(s), 0 succeeded" in capsys.readouterr().out


def test_all_failed_search_gives_a_page_that_says_so(tmp_path, cifar100_dir):
    settings = _settings(tmp_path, cifar100_dir)
    splits = splits_for(settings)
    for tid, optimizer in enumerate(("NoSuchOptimizer", "AlsoMissing")):
        save_result(run_trial({**demo_point(), "optimizer": optimizer}, settings, splits=splits, tid=tid,
                              verbose=False), settings.results_dir)
    outcome = write_report(res.load_results(settings.results_dir), settings, source=settings.results_dir)
    page = outcome.page.read_text()
    assert outcome.trials == 2 and outcome.succeeded == 0
    assert "All 2 trial(s) in" in page and "failed, so there is no accuracy to plot" in page
    assert "NoSuchOptimizer" in page and "AlsoMissing" in page and "<img" not in page


def test_missing_source_is_a_one_line_error(tmp_path, capsys):
    settings = _settings(tmp_path, tmp_path)
    assert main(_report_args(settings, tmp_path / "nowhere.pkl", tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert "nowhere.pkl not found" in err and len(err.splitlines()) == 1


def test_corrupt_trials_pickle_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "results.pkl").write_bytes(b"not a pickle")
    settings = _settings(tmp_path, tmp_path)
    assert main(_report_args(settings, tmp_path / "results.pkl", tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert "is corrupt or unreadable" in err and len(err.splitlines()) == 1


def test_safe_write_report_turns_any_failure_into_a_message(search, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("the report folder cannot be created under a file")
    results = load_trials_pickle(Path(search.trials_file))
    message = safe_write_report(results, search, out_dir=blocker / "out")
    assert message.startswith("report not written:")
    assert safe_write_report(results, search, out_dir=tmp_path / "ok").startswith("report written to")


def test_axes_handle_numbers_categories_and_none():
    frame = results_frame([
        {"status": "ok", "loss": -0.1 * i, "tid": i,
         "space": {"first_conv": [None, 3, 4][i % 3], "use_BN": bool(i % 2), "optimizer": ["Adam", "Nadam"][i % 2],
                   "one_more_fc": None if i == 0 else 0.05 * 1.6 ** i, "lr": 0.001 * 3 ** i}}
        for i in range(6)])
    first_conv = make_axis(frame, "hp:first_conv")
    assert first_conv.kind == "categorical" and first_conv.labels == ("None", "3", "4")
    assert make_axis(frame, "hp:use_BN").labels == ("False", "True")
    assert make_axis(frame, "hp:optimizer").labels == ("Adam", "Nadam")
    fc2 = make_axis(frame, "hp:one_more_fc")
    assert fc2.kind == "numeric" and fc2.labels[0] == "None"
    assert fc2.positions[0] < fc2.positions[1:].min()  # None sits apart, left of the smallest value
    assert make_axis(frame, "hp:lr").log and not fc2.log


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        reason = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return exe


CHECK_SCRIPT = """<script>window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.title = 'HKSCHECK' + JSON.stringify({images: images.length, loaded: loaded,
    text: document.body.innerText.length, height: document.body.scrollHeight});
});</script>"""


def _browse(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=10000"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120, check=False)


def test_headless_chromium_renders_every_image_of_the_report(search, tmp_path):
    exe = _chromium()
    out = tmp_path / "out"
    assert main(_report_args(search, search.trials_file, out)) == 0
    page = (out / "report.html").read_text()
    probe = out / "probe.html"  # a test copy of the page with the checking script added
    probe.write_text(page.replace("</body>", CHECK_SCRIPT + "</body>"))
    dom = _browse(exe, tmp_path / "profile", "--dump-dom", probe.as_uri())
    found = re.search(r"HKSCHECK(\{.*?\})</title>", dom.stdout)
    assert found, f"chromium did not run the check: {dom.stderr[-2000:]}"
    check = json.loads(found.group(1))
    assert check["images"] == len(PICTURES) and check["loaded"] == check["images"]
    assert check["text"] > 500 and check["height"] > 2000
    shot = tmp_path / "page.png"
    _browse(exe, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,1600",
            (out / "report.html").as_uri())
    _check_png(shot.read_bytes())
