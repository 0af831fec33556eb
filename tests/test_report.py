"""The search report: from a real 4-trial search (results.pkl, JSON folder, job store), empty and
all-failed searches, pruned trials and a chance-level best (hand-made results), text escaping; and the
page itself in a real headless Chromium (hover, sorting, a live page that stops reloading, 1,400 and
390 px)."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from chromium import Browser, chromium_executable
from hyperopt import hp
from needs import unavailable
from store_fixtures import postgres_url, unique_exp_key

from hks import plotting
from hks import results as res
from hks.cli import main
from hks.config import Settings
from hks.objective import run_trial, save_result, splits_for
from hks.plotting import GRAPHVIZ_MISSING, graphviz_available
from hks.report import safe_write_report, write_report
from hks.report.builder import chance_warning, precision_note
from hks.report.frame import make_axis, results_frame
from hks.report.snapshot import PendingTrial, Snapshot
from hks.report.sources import load_snapshot, load_trials_pickle
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
DATA = re.compile(r'<script type="application/json" id="hks-data">(.*?)</script>', re.S)
IMG = re.compile(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="([^"]+)"')
EXTERNAL = re.compile(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//', re.I)


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


def _data(page: str) -> dict:
    """The JSON document the page's script draws from."""
    return json.loads(DATA.search(page).group(1))


def _curves(text: str | None) -> dict[str, list]:
    """A trial's curves as the page decodes them."""
    keys = ("fine_loss", "val_fine_loss", "fine_accuracy", "val_fine_accuracy", "coarse_accuracy",
            "val_coarse_accuracy")
    parts = (text or "").split(";")
    return {k: [float(v) if v else None for v in part.split(",")] for k, part in zip(keys, parts) if part}


def _check_png(data: bytes, min_colours: int = 2) -> None:
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    assert image.width > 200 and image.height > 150
    colours = image.getcolors(maxcolors=1 << 22) or []
    assert len(colours) >= min_colours  # not one flat colour
    white = max((count for count, rgb in colours if rgb == (255, 255, 255)), default=0)
    assert white < 0.97 * image.width * image.height  # something is drawn


def _hand_made(tid: int, status: str = "ok", accuracy: float = 0.3, epochs: int = 3, **extra) -> dict:
    """A result as run_trial writes it, made by hand (what the pruning helper's results will look like)."""
    val = [accuracy * (e + 1) / epochs for e in range(epochs)]
    history = {"fine_loss": [2.0 - 0.1 * e for e in range(epochs)],
               "val_fine_loss": [2.1 - 0.1 * e for e in range(epochs)],
               "fine_accuracy": [v + 0.05 for v in val], "val_fine_accuracy": val}
    result = {"tid": tid, "status": status, "loss": -accuracy, "fine_best_accuracy": accuracy, "epochs_run": epochs,
              "history": history, "space": {"lr_rate_mult": 0.5 + 0.1 * tid, "optimizer": ["Adam", "Nadam"][tid % 2]},
              "model_name": f"model_hand_{tid}", "dataset": "cifar100", "started_at": 1.7e9 + 60 * tid,
              "train_seconds": 50.0, "params": 1000 + tid}
    if status == "fail":
        result.update(loss=None, fine_best_accuracy=None, error="ValueError: boom", error_type="ValueError",
                      history={})
    return {**result, **extra}


def test_the_page_a_search_writes_at_its_end_gives_the_budget_and_the_retrain_command_that_finds_it(search):
    page = (Path(search.results_dir) / "report.html").read_text()
    assert "4 trial(s) (budget 4): 4 succeeded" in page
    data = _data(page)
    assert data["meta"]["finished"] and data["meta"]["budget"] == 4 and not data["pending"]
    command = f"python -m hks retrain-best --data-dir {search.data_dir} --results-dir {search.results_dir} " \
              f"--trials-file {search.trials_file} retrains it"
    assert command in page  # the flags that find this search, as the console's next: line gives them


def test_without_graphviz_the_report_says_why_it_has_no_architecture(search, tmp_path, monkeypatch):
    monkeypatch.setattr(plotting, "graphviz_available", lambda: False)  # as without dot on the PATH
    out = tmp_path / "out"
    settings = search.replace(plots=True)
    assert main(_report_args(settings, settings.trials_file, out)) == 0
    page = (out / "report.html").read_text()
    assert GRAPHVIZ_MISSING in page and "Architecture of the best model" not in set(IMG.findall(page))


def test_report_from_results_pkl_embeds_every_trial_and_the_architecture(search, tmp_path, capsys):
    out = tmp_path / "out"
    settings = search.replace(plots=True)
    assert main(_report_args(settings, settings.trials_file, out)) == 0
    assert "report: 4 trial(s), 4 succeeded" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    data = _data(page)
    results = load_trials_pickle(Path(settings.trials_file))
    assert data["trials"]["n"] == [r["tid"] + 1 for r in results]  # numbered from 1, as the progress lines
    assert "lr_rate_mult" in {h["name"] for h in data["trials"]["hp"]}  # the varied hyperparameters
    for text, result in zip(data["trials"]["curves"], results):  # whole epochs: one value per epoch
        curves = _curves(text)
        assert len(curves["val_fine_accuracy"]) == result["epochs_run"]
        assert curves["val_fine_accuracy"] == pytest.approx(result["history"]["val_fine_accuracy"], abs=1e-4)
        assert set(curves) >= {"fine_loss", "val_fine_loss", "fine_accuracy", "val_fine_accuracy"}
    assert data["meta"]["finished"] and data["meta"]["budget"] == 4 and data["meta"]["chance"] == 0.1
    assert f"<title>{settings.experiment_name} \u2014 cifar10: hks search report</title>" in page
    if not graphviz_available():
        unavailable("graphviz's dot is not installed, so no architecture is drawn (apt-get install graphviz)")
    assert set(IMG.findall(page)) == {"Architecture of the best model"}
    assert {r["base_lr"] for r in results} == {float(settings.base_lr)}  # what retrain-best needs
    assert {type(r["val_images"]) for r in results} == {int} and "Measured on" in page  # how precise the best is
    best = res.best_result(results)
    assert f"Best: {best['model_name']} (trial {best['tid'] + 1}), validation fine accuracy {-best['loss']:.4f}" in page
    assert data["meta"]["best_n"] == best["tid"] + 1
    assert "RandomForestRegressor" in data["importance"]["method"]
    assert page.count("Plotly=") <= 2 and len(page) > 4_000_000  # plotly's script, embedded once
    markup = page.split("<script")[0]
    assert not EXTERNAL.search(markup)  # the markup references nothing outside the page
    assert 'id="failed"' not in markup and 'id="live"' not in markup and 'class="warning"' not in markup


def test_report_from_json_folder_lists_a_failed_trial_with_settings_and_json_link(search, tmp_path,
                                                                                     monkeypatch):
    results_dir = tmp_path / "results"
    shutil.copytree(search.results_dir, results_dir, ignore=shutil.ignore_patterns("report*"))
    settings = search.replace(results_dir=str(results_dir))
    bad = {**demo_point(), "optimizer": "<b>NoSuchOptimizer</b>"}
    failed = run_trial(bad, settings, tid=99, verbose=False)
    assert failed["status"] == "fail"
    save_result(failed, settings.results_dir)  # as whoever completes a trial does
    out = tmp_path / "elsewhere" / "out"
    assert main(_report_args(settings, results_dir, out)) == 0
    page = (out / "report.html").read_text()
    assert "5 trial(s): 4 succeeded, 1 failed" in page
    failed_section = page.split('id="failed"')[1].split("</section>")[0]
    assert "&lt;b&gt;NoSuchOptimizer&lt;/b&gt;" in failed_section and "<b>NoSuchOptimizer" not in page
    assert "SpaceError" in failed_section and "conv_kernel_size=3" in failed_section  # its settings
    link = re.search(r'<a href="([^"]+)">', failed_section).group(1)
    assert not link.startswith("/") and (out / link).resolve() == (results_dir / f"{failed['model_name']}.txt.json")
    best = res.best_result(load_trials_pickle(Path(search.trials_file)))
    assert f"Best: {best['model_name']}" in page  # the same winner, whatever the file order
    assert _data(page)["trials"]["status"].count("fail") == 1
    elsewhere = tmp_path / "cwd"  # a folder as --from, and nothing else: its page goes there, linking its files
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["report", "--from", str(results_dir), "--no-plots"]) == 0
    links = _data((results_dir / "report.html").read_text())["trials"]["json"]
    assert len(links) == 5 and all(link and (results_dir / link).is_file() for link in links)
    assert not list(elsewhere.iterdir())


def _running_store(url: str, search: Settings, budget: int):
    """An experiment with one finished trial, one running (two epochs pushed) and the rest queued."""
    from hks.store import open_store
    from hks.store import protocol as p

    results = load_trials_pickle(Path(search.trials_file))
    exp = search.experiment_name
    store = open_store(url)
    space = str(Path(__file__).parent / "spaces" / "small_space.py")
    store.put_experiment(p.Experiment(exp, "f" * 16, space, "hks.objective:run_trial",
                                      {**search.to_dict(), "max_evals": budget}))
    docs = [{"misc": {"vals": {"lr_rate_mult": [0.9 + 0.1 * t], "optimizer": [1]}}} for t in range(budget)]
    store.insert_jobs([p.Job(exp, t, doc=docs[t]) for t in range(budget)])
    store.complete(store.reserve(exp, "worker-1", 60.0), results[0])
    running = store.reserve(exp, "worker-2", 600.0)
    store.push_metrics(running, [{"epoch": 1, "val_fine_accuracy": 0.11, "fine_accuracy": 0.12},
                                 {"epoch": 2, "val_fine_accuracy": 0.17, "fine_accuracy": 0.2}])
    return store, running, results


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_report_from_a_job_store_url_shows_running_and_queued_trials(search, tmp_path, capsys, kind, monkeypatch):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}" if kind == "sqlite" else postgres_url()
    search = search.replace(experiment_name=unique_exp_key("report"))
    store, running, results = _running_store(url, search, budget=4)
    try:
        assert main(_report_args(search, url, tmp_path / "out")) == 0
        assert "report: 1 trial(s), 1 succeeded, 1 running, 2 queued" in capsys.readouterr().out
        page = (tmp_path / "out" / "report.html").read_text()
        password = urlsplit(url).password
        if password:  # the page names its source, never the store's password
            assert password not in page and f"{urlsplit(url).username}:***@" in page
        live = page.split('id="live"')[1].split("<nav>")[0]
        assert "1/4 trials done; 1 running, 2 queued" in live and "worker-2" in live and "0.17" in live
        assert "Queued: trial(s) 3, 4." in live
        data = _data(page)
        assert not data["meta"]["finished"]
        pending = {p["n"]: p for p in data["pending"]}
        assert pending[2]["state"] == "running" and pending[2]["epoch"] == 2
        assert _curves(pending[2]["curves"])["val_fine_accuracy"] == [0.11, 0.17]
        assert pending[2]["point"]["optimizer"] == "RMSprop"
        store.complete(running, results[1])  # finish the search through the store protocol, as workers do
        for result in results[2:]:
            store.complete(store.reserve(search.experiment_name, "worker-1", 60.0), result)
        snapshot = load_snapshot(url, search)
        assert snapshot.finished and not snapshot.pending and len(snapshot.results) == 4
        capsys.readouterr()
        from hks.store import protocol as p

        monkeypatch.chdir(tmp_path)
        record = store.get_experiment(search.experiment_name)
        saved_on_master = {"dataset_size": search.dataset_size, "results_dir": "/data/results"}  # the master's folder
        store.put_experiment(p.Experiment(search.experiment_name, record.fingerprint, record.space, record.objective,
                                          {**record.settings, **saved_on_master}, created_at=record.created_at))
        assert main(["report", "--from", url, "--experiment-name", search.experiment_name]) == 0
        page = (tmp_path / "results" / "report.html").read_text()  # --results-dir, not the master's own folder
        assert f"retrain-best --from results --dataset-size {search.dataset_size} retrains it" in page
        assert main(_report_args(search.replace(experiment_name="nope"), url, tmp_path / "out")) == 2
        err = capsys.readouterr().err.strip()
        assert f"has no experiment 'nope' (it holds '{search.experiment_name}'" in err  # the newest first
        assert len(err.splitlines()) == 1
    finally:
        store.delete_experiment(search.experiment_name)
        store.close()


def test_pruned_trials_are_drawn_apart_and_never_crowned(tmp_path):
    results = [_hand_made(0, accuracy=0.30), _hand_made(1, accuracy=0.45),
               _hand_made(2, "pruned", accuracy=0.6, epochs=2, pruned_at_epoch=2, rung=0),
               _hand_made(3, "fail")]
    settings = _settings(tmp_path, tmp_path, dataset="cifar100")
    page = write_report(results, settings, out_dir=tmp_path / "out").page.read_text()
    assert "4 trial(s): 2 succeeded, 1 failed, 1 pruned" in page
    assert "Best: model_hand_1 (trial 2)" in page  # a pruned trial's partial accuracy never wins
    trials = _data(page)["trials"]
    assert trials["status"] == ["ok", "ok", "pruned", "fail"]
    assert trials["pruned_at"][2] == 2 and trials["reached"][2] == 0.6 and trials["acc"][2] is None
    assert len(_curves(trials["curves"][2])["val_fine_accuracy"]) == 2  # its curve stops where it was pruned


def test_a_best_trial_at_chance_level_is_flagged(tmp_path):
    settings = _settings(tmp_path, tmp_path, dataset="cifar100")
    diverged = [_hand_made(0, accuracy=0.011), _hand_made(1, accuracy=0.009)]
    page = write_report(diverged, settings, out_dir=tmp_path / "a").page.read_text()
    warning = re.search(r'<p class="warning" role="alert">(.*?)</p>', page).group(1)
    assert "0.0110" in warning and "chance level" in warning and "1/100 = 0.0100" in warning
    fine = write_report([_hand_made(0, accuracy=0.3)], settings, out_dir=tmp_path / "b").page.read_text()
    assert 'class="warning"' not in fine
    assert chance_warning(0.14, 0.1, "cifar10") and not chance_warning(0.16, 0.1, "cifar10")
    assert chance_warning(0.5, None, "mystery") is None


def test_the_best_section_says_how_precise_its_accuracy_is_and_which_trials_it_cannot_tell_apart(tmp_path):
    settings = _settings(tmp_path, tmp_path, dataset="cifar100")
    # best 0.40 on 5,000 images: standard error sqrt(0.4 * 0.6 / 5000) = 0.0069, so 0.39 is within two, 0.38 is not
    results = [_hand_made(0, accuracy=0.38, val_images=5000), _hand_made(1, accuracy=0.40, val_images=5000),
               _hand_made(2, accuracy=0.39, val_images=5000), _hand_made(3, "pruned", accuracy=0.41, val_images=5000),
               _hand_made(4, accuracy=0.405, val_images=5000, pruned=True)]  # a pruned trial as hyperopt was told it
    page = write_report(results, settings, out_dir=tmp_path / "a").page.read_text()
    best = page[page.index('id="best"'):page.index("</section>", page.index('id="best"'))]
    assert "Measured on 5,000 validation images" in best and "\u00b10.0069" in best
    assert "1 other trial(s) are within 2 standard errors of it" in best and "trial(s) 3 (0.3900)." in best
    assert "0.3800" not in best and "0.4100" not in best and "0.4050" not in best  # worse or pruned: not its equals
    # a result that does not record its validation set (older hks, or the Python API's own objectives): no claim
    old = write_report([_hand_made(0, accuracy=0.4), _hand_made(1, accuracy=0.399)], settings, out_dir=tmp_path / "b")
    assert "standard error" not in old.page.read_text()
    many = [_hand_made(i, accuracy=0.40 - 0.0005 * i, val_images=5000) for i in range(14)]
    listed = precision_note({**many[0], "test": {"fine_accuracy": 0.4}}, many)  # a copy, with its test record
    assert "13 other trial(s)" in listed and listed.endswith("and 3 more. The test figure of retrain-best is the one "
                                                              "to trust.")


def test_snapshots_know_budget_and_time_left(search, tmp_path):
    snapshot = load_snapshot(search.trials_file, search)
    assert snapshot.budget == 4 and snapshot.finished and snapshot.dataset == "cifar10"
    assert snapshot.seconds_left() is None
    half = Snapshot([_hand_made(0), _hand_made(1)], [PendingTrial(2, "running")], budget=6, started_at=1000.0,
                    finished=False, taken_at=1100.0)
    assert half.seconds_left() == pytest.approx(200.0)  # 4 more trials at 50 s a trial so far
    folder = load_snapshot(search.results_dir, search, watching=True)
    assert not folder.finished and folder.budget is None  # a folder has no budget: running while watched


def test_watch_stops_once_the_search_is_over(search, tmp_path, capsys):
    assert main(_report_args(search, search.trials_file, tmp_path / "out") + ["--watch", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "report: 4 trial(s)" in out and "the search is over" in out


def test_watching_a_json_folder_stops_once_it_holds_max_evals_trials(search, tmp_path, capsys):
    assert not load_snapshot(search.results_dir, search, watching=True, budget=5).finished
    assert load_snapshot(search.results_dir, search, watching=True, budget=4).finished
    args = _report_args(search, search.results_dir, tmp_path / "out") + ["--watch", "0.2", "--max-evals", "4"]
    assert main(args) == 0  # a folder records no budget: without --max-evals this would watch until Ctrl-C
    out = capsys.readouterr().out
    assert "report: 4 trial(s)" in out and "the search is over" in out and "Ctrl-C" not in out


def test_empty_results_folder_gives_a_page_that_says_so(tmp_path, capsys):
    (tmp_path / "results").mkdir()
    settings = _settings(tmp_path, tmp_path)
    assert main(_report_args(settings, tmp_path / "results", tmp_path / "out")) == 0
    page = (tmp_path / "out" / "report.html").read_text()
    assert "No finished trial in" in page and 'id="history"' not in page.split("<script")[0]
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
    assert "All 2 trial(s) in" in page and "failed, so there is no score to plot" in page
    assert "NoSuchOptimizer" in page and "AlsoMissing" in page and 'id="architecture"' not in page.split("<script")[0]


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
    one_result = tmp_path / "model_0.1000_ab12cd34.txt.json"
    one_result.write_text('{"loss": -0.1}')
    assert main(_report_args(settings, one_result, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()  # not "corrupt ... delete it": a valid file of the wrong kind
    assert err == f"hks: error: {one_result} is one trial's result: pass --from with its folder, {tmp_path}"


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


# --- the page in a real headless Chromium --------------------------------------------------------

@pytest.fixture
def browser():
    exe = chromium_executable()
    if exe is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    with Browser(exe, 1400, 1000) as b:
        yield b


READY = "window.hksReport && window.hksReport.ready && document.readyState === 'complete'"
POINT_AT = """(() => {  // the screen position of point k of the history chart's first trace
  const gd = document.getElementById('history-chart'); gd.scrollIntoView({block: 'center'});
  const fl = gd._fullLayout, t = gd.data[0], r = gd.getBoundingClientRect();
  return [r.left + fl._size.l + fl.xaxis.l2p(t.x[%d]), r.top + fl._size.t + fl.yaxis.l2p(t.y[%d]), t.x[%d]];
})()"""
FIRST_COLUMN = "Array.from(document.querySelectorAll('#trial-table tbody tr')).map(r => Number(r.cells[0].textContent))"
HEADER_AT = """(() => {
  const th = document.querySelector('#trial-table th[data-key="%s"]'); th.scrollIntoView({block: 'center'});
  const r = th.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];
})()"""


def test_a_paused_trial_is_shown_as_paused_and_still_found_among_the_pruned_in_chromium(tmp_path, browser):
    results = [_hand_made(0, accuracy=0.30), _hand_made(1, accuracy=0.45),
               _hand_made(2, "pruned", accuracy=0.2, epochs=1, pruned_at_epoch=1, rung=0, paused=True),
               _hand_made(3, "pruned", accuracy=0.1, epochs=1, pruned_at_epoch=1, rung=0)]
    settings = _settings(tmp_path, tmp_path, dataset="cifar100")
    page = write_report(results, settings, out_dir=tmp_path / "out").page
    assert "2 pruned (1 of them paused, which may resume)" in page.read_text()
    browser.navigate(page.as_uri())
    browser.wait_for(READY)
    status = "Array.from(document.querySelectorAll('#trial-table tbody tr')).map(r => r.cells[1].textContent)"
    assert sorted(browser.evaluate(status)) == ["ok", "ok", "paused", "pruned"]
    browser.evaluate("(() => { const s = document.getElementById('trial-status'); s.value = 'pruned';"
                     " s.dispatchEvent(new Event('change')); })()")
    assert sorted(browser.evaluate(status)) == ["paused", "pruned"]  # the status filter still finds it
    assert not browser.errors()


def _custom_loss(point, tid):
    if tid == 2:
        raise ValueError("boom")
    return (point["x"] - 1) ** 2 + (0.5 if point["kind"] == "b" else 0.0)


def test_a_custom_objectives_page_shows_its_loss_lowest_best_with_nothing_cifar_in_chromium(tmp_path, browser,
                                                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    settings = Settings(trials_file="api.pkl", results_dir="api", max_evals=12, plots=False,
                        experiment_name="api_search", seed=3)
    space = {"x": hp.uniform("x", -5, 5), "kind": hp.choice("kind", ["a", "b"])}
    with Study(settings, space=space, objective=_custom_loss) as study:
        study.optimize()
        best = study.best["loss"]
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["report", "--from", "../api.pkl"]) == 0  # its page and links: the search's folder, beside it
    assert not (tmp_path / "elsewhere" / "results").exists()
    page = (tmp_path / "api" / "report.html").read_text()
    text = page.split("<script")[0]
    assert "<title>api_search: hks search report</title>" in page  # no dataset it never used
    assert f"loss {best:.4g}." in text and "accuracy" not in text and "chance" not in text
    assert 'id="architecture"' not in text and 'id="curves"' not in text and "retrain-best" not in text
    failed = text.split('id="failed"')[1].split("</section>")[0]
    assert "ValueError" in failed and "not in the results folder" not in failed and "None" not in failed
    browser.navigate((tmp_path / "api" / "report.html").as_uri())
    browser.wait_for(READY)
    assert browser.evaluate("document.getElementById('history-chart')._fullLayout.yaxis.title.text") == "loss"
    trial, shown = browser.evaluate("(t => [t.x, t.y])(document.getElementById('history-chart').data[0])")
    at, best_so_far = browser.evaluate("(t => [t.x, t.y])(document.getElementById('history-chart').data[1])")
    assert best_so_far == [min(y for x, y in zip(trial, shown) if x <= n) for n in at]
    assert best_so_far[-1] == pytest.approx(best, rel=1e-3)  # the page rounds to 4 significant digits
    assert min(shown) >= 0  # losses as returned, not negated into "accuracies"
    failed_y = browser.evaluate("document.getElementById('history-chart').data.find(t => t.name === 'failed').y")
    assert failed_y == [max(shown)]  # at the worst end, not at 0 among the best losses
    assert browser.evaluate(FIRST_COLUMN)[0] == study.best["tid"] + 1  # the table lists the lowest loss first
    assert not browser.errors()


def test_page_hover_sorting_and_screenshots_in_chromium(search, tmp_path, browser):
    out = tmp_path / "out"
    assert main(_report_args(search, search.trials_file, out)) == 0
    browser.navigate((out / "report.html").as_uri())
    browser.wait_for(READY)
    assert set(browser.evaluate("window.hksReport.drawn")) == {
        "history-chart", "curves-chart", "selected-loss", "selected-acc", "parallel-chart", "slices-grid",
        "pair-chart", "importance-chart"}
    x, y, trial = browser.evaluate(POINT_AT % (1, 1, 1))
    browser.mouse("mouseMoved", x, y)  # a real mouse over the second trial's dot
    tip = browser.wait_for("(document.querySelector('#history-chart .hoverlayer .hovertext') || {}).textContent")
    assert f"trial {trial} (ok)" in tip and "val fine acc" in tip and "lr_rate_mult: " in tip and "parameters" in tip
    results = load_trials_pickle(Path(search.trials_file))
    by_accuracy = [r["tid"] + 1 for r in sorted(results, key=lambda r: r["loss"])]
    assert browser.evaluate(FIRST_COLUMN) == by_accuracy  # best first by default
    browser.click(*browser.evaluate(HEADER_AT % "n"))
    assert browser.evaluate(FIRST_COLUMN) == [1, 2, 3, 4]
    browser.click(*browser.evaluate(HEADER_AT % "n"))
    assert browser.evaluate(FIRST_COLUMN) == [4, 3, 2, 1]
    row = browser.evaluate("(() => { const r = document.querySelector('#trial-table tbody tr:last-child')"
                           ".getBoundingClientRect(); return [r.left + 10, r.top + r.height / 2]; })()")
    browser.click(*row)  # choosing a trial shows its curves and settings
    browser.wait_for("window.hksReport.selected === 1")
    assert browser.evaluate("document.getElementById('selected-title').textContent") == "Trial 1 (ok)"
    assert "lr_rate_mult" in browser.evaluate("document.getElementById('selected-settings').textContent")
    assert browser.evaluate("document.getElementById('selected-acc')._fullLayout.xaxis.tickformat") == "d"
    assert browser.evaluate("document.getElementById('history-chart')._fullLayout.xaxis._vals.map(v => v.x)") == [
        1, 2, 3, 4]  # whole trial numbers on the axis
    browser.evaluate("window.scrollTo(0, 0)")
    for width in (1400, 390):
        browser.resize(width, 1000)
        browser.evaluate("new Promise(r => setTimeout(r, 500))")
        _check_png(browser.screenshot(tmp_path / f"report_{width}.png"), min_colours=50)
        assert browser.evaluate("document.documentElement.scrollWidth") <= width + 1  # no sideways page scroll
    assert not browser.evaluate("window.hksReport.refreshScheduled")  # a finished search: no reloading
    assert browser.errors() == []


def test_live_page_shows_a_running_trial_then_stops_reloading(search, tmp_path, browser):
    """``report --watch 1`` over a real store; workers finish the search meanwhile; the open page follows."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    search = search.replace(experiment_name=unique_exp_key("live"))
    store, running, results = _running_store(url, search, budget=3)
    out = tmp_path / "out"
    watch = subprocess.Popen([sys.executable, "-m", "hks", *_report_args(search, url, out), "--watch", "1"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "report.html").exists() and time.monotonic() < deadline and watch.poll() is None:
            time.sleep(0.2)
        browser.navigate((out / "report.html").as_uri())
        browser.wait_for(READY, timeout=60)
        live = browser.evaluate("document.getElementById('live').innerText")
        assert "1 running" in live and "worker-2" in live and "0.17" in live
        assert browser.evaluate("window.hksReport.refreshScheduled")
        assert "running" in browser.evaluate("document.querySelector('#trial-table tbody').innerText")
        store.complete(running, results[1])
        store.complete(store.reserve(search.experiment_name, "worker-1", 60.0), results[2])
        output, _ = watch.communicate(timeout=120)
        assert "the search is over" in output
        browser.wait_for(READY + " && !document.getElementById('live')", timeout=60)  # it reloaded itself
        assert not browser.evaluate("window.hksReport.refreshScheduled")
        loads = browser.navigations()
        browser.evaluate("new Promise(r => setTimeout(r, 3000))")  # three refresh periods
        assert browser.navigations() == loads  # and reloads no more
        assert browser.evaluate("window.hksReport.ready")
        assert browser.errors() == []
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        store.delete_experiment(search.experiment_name)
        store.close()


def test_pruned_trials_and_parallel_ranges_in_chromium(tmp_path, browser):
    results = [_hand_made(t, accuracy=0.1 + 0.05 * t) for t in range(6)]
    results.append(_hand_made(6, "pruned", accuracy=0.2, epochs=2, pruned_at_epoch=2))
    results.append(_hand_made(7, "fail"))
    page = write_report(results, _settings(tmp_path, tmp_path, dataset="cifar100"), out_dir=tmp_path / "out").page
    browser.navigate(page.as_uri())
    browser.wait_for(READY)
    pruned = browser.evaluate("document.getElementById('history-chart').data.filter(t => t.name === 'pruned')"
                              ".map(t => [t.x, t.marker.symbol])")
    assert pruned == [[[7], "triangle-down"]]
    assert browser.evaluate("document.getElementById('curves-chart').data.find(t => t.name === 'pruned here').x") == [2]
    browser.evaluate("document.querySelector('#trial-table tr[data-n=\"7\"]').click()")
    browser.wait_for("window.hksReport.selected === 7")
    assert browser.evaluate("document.getElementById('selected-title').textContent") == "Trial 7 (pruned)"
    marker = browser.evaluate("document.getElementById('selected-acc').data.find(t => t.name === 'pruned')")
    assert marker["x"] == [2] and marker["text"] == ["pruned at epoch 2"]
    # a range on the accuracy axis (the last one), as a drag along it would set: the table keeps those trials
    browser.evaluate("(() => { const gd = document.getElementById('parallel-chart');"
                     " return Plotly.restyle(gd, {['dimensions[' + (gd.data[0].dimensions.length - 1) +"
                     " '].constraintrange']: [[0.24, 0.36]]}).then(() => true); })()")
    browser.wait_for("!document.getElementById('trial-clear').hidden")
    assert sorted(browser.evaluate(FIRST_COLUMN)) == [4, 5, 6]  # accuracies 0.25, 0.3, 0.35
    browser.evaluate("document.getElementById('trial-clear').click()")
    assert len(browser.evaluate(FIRST_COLUMN)) == 8
    assert browser.errors() == []


def test_many_trials_draw_lower_charts_when_scrolled_to(tmp_path, browser):
    results = [_hand_made(t, accuracy=0.05 + (t * 37 % 100) / 250) for t in range(400)]
    page = write_report(results, _settings(tmp_path, tmp_path, dataset="cifar100"), out_dir=tmp_path / "out").page
    browser.navigate(page.as_uri())
    browser.wait_for(READY)
    assert "slices-grid" in browser.evaluate("window.hksReport.lazy")
    assert "slices-grid" not in browser.evaluate("window.hksReport.drawn")
    assert browser.evaluate("document.querySelectorAll('#trial-table tbody tr').length") == 50  # one page of rows
    browser.evaluate("document.getElementById('slices-grid').scrollIntoView()")
    browser.wait_for("window.hksReport.drawn.includes('slices-grid')")
    assert browser.errors() == []


def test_a_pruned_custom_objective_trial_reaches_its_loss_as_the_page_shows_losses():
    from hks.report.frame import LOSS_METRIC, REACHED

    frame = results_frame([{"tid": 0, "status": "ok", "loss": 0.5, "space": {"x": 1}},
                           {"tid": 1, "status": "pruned", "loss": 0.9, "space": {"x": 2}}], LOSS_METRIC)
    assert list(frame[REACHED]) == [0.5, 0.9]  # not -0.9, which would sort as the best
