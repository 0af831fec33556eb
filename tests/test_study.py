"""The search core: a study over any storage, sampler and runner; seeding, strict resume, attempts,
pending-aware suggestions, the public API, and an import graph without circles."""

from __future__ import annotations

import ast
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from distributed_helpers import env as child_env
from hyperopt import Trials, hp, rand
from needs import unavailable

from hks import study as st
from hks.config import IDENTITY_SETTINGS, Settings
from hks.errors import ConfigError, StoreError, TrialsFileError
from hks.plotting import graphviz_available
from hks.results import best_result, load_results
from hks.samplers import make_sampler
from hks.samplers.hyperopt_algos import HyperoptSampler
from hks.seeding import trial_seed
from hks.store import protocol as p
from hks.store.hyperopt_docs import job_doc, trials_from_docs

ROOT = Path(__file__).resolve().parents[1]
SMALL_SPACE = str(ROOT / "tests" / "spaces" / "small_space.py")
CATEGORICAL = {f"c{i}": hp.choice(f"c{i}", list(range(6))) for i in range(5)}
WIDE = {f"w{i}": hp.choice(f"w{i}", list(range(6))) for i in range(12)}


def _vals(jobs):
    return [job.doc["misc"]["vals"] for job in jobs]


def _records(path):
    from hks.store.pickle_file import read_records

    return read_records(Path(path))[1]


# --- the real CNN search in process --------------------------------------------------------------

def test_classic_space_search_writes_json_results_trials_and_plots(tiny_settings, capsys):
    settings = tiny_settings.replace(plots=True)
    results = st.run_search(settings)
    assert len(results) == 3
    saved = load_results(settings.results_dir)
    assert sorted(r["model_name"] for r in saved) == sorted(r["model_name"] for r in results)
    for result in saved:
        assert result["status"] == "ok", result.get("error")
        assert result["loss"] == -result["fine_best_accuracy"]
        assert result["fine_best_accuracy"] == max(result["history"]["val_fine_accuracy"])
        assert set(result["space"]) >= {"lr_rate_mult", "pooling_type", "residual"} and result["params"] > 0
    with open(settings.trials_file, "rb") as handle:
        trials = pickle.load(handle)  # still a hyperopt Trials, as the classic sample's users expect
    assert isinstance(trials, Trials) and len(trials.trials) == 3
    assert [t["result"]["status"] for t in trials.trials] == ["ok"] * 3
    results_dir = Path(settings.results_dir)
    assert (results_dir / "report.html").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "starting search: 3 trials (--algo tpe)" in out
    assert "trial 3/3:" in out and "search done: 3 trials" in out
    if not graphviz_available():
        unavailable("graphviz's dot is not installed, so no model is drawn (apt-get install graphviz)")
    assert (results_dir / "model_demo.png").stat().st_size > 1000
    assert (results_dir / "model_best.png").stat().st_size > 1000


def test_resume_runs_only_the_missing_trials_and_matches_an_uninterrupted_search(tiny_settings, tmp_path):
    """Real training, so the resumed trial's point comes from a model fitted to a real first score
    (tests/test_pruned_search.py checks the same with learning curves, longer)."""
    settings = tiny_settings.replace(space=SMALL_SPACE, max_evals=1, n_startup_trials=1)
    st.run_search(settings)
    resumed = st.run_search(settings.replace(max_evals=2))
    assert [r["tid"] for r in resumed] == [0, 1]
    assert len(load_results(settings.results_dir)) == 2
    straight = settings.replace(max_evals=2, trials_file=str(tmp_path / "straight.pkl"),
                                results_dir=str(tmp_path / "straight"))
    st.run_search(straight)
    assert _vals(_records(straight.trials_file)) == _vals(_records(settings.trials_file))


def test_failing_and_diverging_trials_are_recorded_and_the_search_goes_on(tiny_settings):
    from hks.model import build_model
    from hks.objective import run_trial

    def flaky(point, settings, *, tid, on_epoch=None):
        def build(p_, fine, coarse):
            if tid == 0:
                raise RuntimeError("simulated crash while building")
            model = build_model(p_, fine, coarse)
            if tid == 1:
                model.layers[-1].set_weights([np.full_like(w, np.nan) for w in model.layers[-1].get_weights()])
            return model
        return run_trial(point, settings, tid=tid, build=build, on_epoch=on_epoch)

    settings = tiny_settings.replace(space=SMALL_SPACE, epochs=3, patience=3)
    with st.Study(settings, objective=flaky) as study:
        results = study.optimize()
    assert [r["status"] for r in results] == ["fail", "fail", "ok"]
    assert results[0]["error"] == "RuntimeError: simulated crash while building"
    assert "Traceback" in results[0]["traceback"] and results[1]["error_type"] == "NonFiniteLoss"
    assert len(results[1]["history"]["loss"]) == 1  # stopped at the end of the epoch it diverged in
    assert best_result(results)["tid"] == 2


# --- seeding -------------------------------------------------------------------------------------

def _startup(seed: int, n: int = 8) -> list[dict]:
    sampler = HyperoptSampler("rand", WIDE, seed)
    return [doc["misc"]["vals"] for doc in sampler.suggest([], list(range(n)))]


def test_seeds_give_independent_start_up_sequences_not_shifted_copies():
    sequences = [_startup(seed) for seed in range(10)]
    points = {json.dumps(v, sort_keys=True) for seq in sequences for v in seq}
    assert len(points) == 80  # 6^12 points: ten independent sequences share (almost surely) none
    for seed in range(9):  # the old seed + trial-id scheme made seed s+1's trial k equal seed s's trial k+1
        assert sequences[seed + 1][:-1] != sequences[seed][1:]
    assert _startup(3) == _startup(3)
    assert len({trial_seed(s, t) for s in range(30) for t in range(30)}) == 900


# --- pending-aware suggestions ---------------------------------------------------------------------

def _job(tid: int, vals: dict, state=p.DONE, loss=None) -> p.Job:
    misc = {"tid": tid, "cmd": None, "workdir": None, "idxs": {k: [tid] for k in vals},
            "vals": {k: [v] for k, v in vals.items()}}
    result = {"status": "ok", "loss": loss} if state == p.DONE else None
    return p.Job("e", tid, state=state, doc={"spec": None, "misc": misc}, result=result)


def _rand_vals(tid: int, seed: int) -> dict:
    from hyperopt import base

    domain = base.Domain(lambda _: None, CATEGORICAL)
    return job_doc(rand.suggest([tid], domain, trials_from_docs([]), trial_seed(seed, tid))[0])["misc"]["vals"]


def test_start_up_counts_finished_trials_only_not_the_pending_ones():
    sampler = HyperoptSampler("tpe", CATEGORICAL, seed=1, n_startup=2)
    finished = [_job(0, {k: 0 for k in CATEGORICAL}, loss=1.0)]
    pending = [_job(tid, {k: tid % 6 for k in CATEGORICAL}, state=p.RUNNING) for tid in range(1, 9)]
    [suggested] = sampler.suggest(finished + pending, [9])
    assert suggested["misc"]["vals"] == _rand_vals(9, 1)  # 1 finished < 2: still random, despite 8 pending
    finished.append(_job(9, {k: 1 for k in CATEGORICAL}, loss=0.5))
    [modelled] = sampler.suggest(finished + pending, [10])
    assert modelled["misc"]["vals"] != _rand_vals(10, 1)  # 2 finished: TPE models now


def test_a_batch_for_eight_idle_workers_has_no_duplicates():
    history = [_job(t, {k: int(v) for k, v in zip(CATEGORICAL, np.random.default_rng(t).integers(0, 6, 5))},
                    loss=float(t % 7)) for t in range(25)]
    for algo in ("tpe", "anneal", "rand"):
        sampler = make_sampler(Settings(algo=algo, n_startup_trials=5, seed=2), CATEGORICAL)
        batch = sampler.suggest(history, list(range(25, 33)))
        points = {json.dumps(doc["misc"]["vals"], sort_keys=True) for doc in batch}
        assert len(points) == 8, algo


# --- strict resume ---------------------------------------------------------------------------------

QUICK = {"x": hp.uniform("x", -2, 2)}


def square(point):
    return point["x"] ** 2


def _quick_settings(tmp_path, **changes) -> Settings:
    fields = {"max_evals": 3, "algo": "rand", "trials_file": str(tmp_path / "quick.pkl"),
              "results_dir": str(tmp_path / "results"), "plots": False, **changes}
    return Settings(**fields)


CHANGED = {"dataset": "cifar10", "dataset_size": 500, "val_fraction": 0.2, "augment_crop": True, "epochs": 7,
           "patience": 2, "seed": 7, "base_lr": "0.01"}


@pytest.mark.parametrize("name", sorted(CHANGED))
def test_resuming_with_a_setting_that_changes_scores_is_refused_and_nothing_is_written(tmp_path, name):
    assert set(CHANGED) | {"space", "objective"} == set(IDENTITY_SETTINGS)
    settings = _quick_settings(tmp_path)
    with st.Study(settings, space=QUICK, objective=square) as study:
        study.optimize()
    before = Path(settings.trials_file).read_bytes()
    with pytest.raises(ConfigError) as err:
        st.Study(settings.replace(max_evals=5, **{name: CHANGED[name]}), space=QUICK, objective=square)
    message = str(err.value)
    flag = "--" + name.replace("_", "-")
    saved = getattr(settings, name)
    assert f"{flag} {saved!r}, but this run has {CHANGED[name]!r}" in message and "\n" not in message
    assert "start a new search (another --trials-file and --results-dir)" in message  # a file holds one search
    assert Path(settings.trials_file).read_bytes() == before


def test_the_objectives_identity_is_its_own_code_and_what_it_uses_not_the_rest_of_its_script(tmp_path,
                                                                                              monkeypatch):
    import importlib

    from hks.experiment import code_fingerprint

    module = tmp_path / "user_script.py"
    body = ("SCALE = 2\n"
            "def helper(x):\n    return SCALE * x\n"
            "def loss(point):\n    return helper(point['x']) ** 2\n"
            "def unrelated():\n    return 1\n"
            "MAX_EVALS = 10\n")
    module.write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    user = importlib.import_module("user_script")
    first = code_fingerprint(user.loss)

    def edited(old: str, new: str) -> str:
        module.write_text(body.replace(old, new))
        return code_fingerprint(importlib.reload(user).loss)

    assert edited("MAX_EVALS = 10", "MAX_EVALS = 50\nprint('more')") == first  # the budget, a print: same search
    assert edited("return 1", "return 2") == first  # a function it does not call
    assert edited("SCALE * x", "SCALE * x + 1") != first  # a helper it calls
    assert edited("SCALE = 2", "SCALE = 3") != first  # a constant it uses


IDENTITY_PROBE = """
import functools, os, sys
sys.path.insert(0, {folder!r})
import user_kinds as u
from hks.code_identity import code_fingerprint
kinds = (u.Obj(), u.uses_constants, u.LAMBDA, functools.partial(u.uses_constants, k=u.Obj()))
print([code_fingerprint(f) for f in kinds])
"""


def test_an_objectives_identity_is_the_same_in_every_run_of_an_unchanged_script_whatever_its_kind(tmp_path):
    module = tmp_path / "user_kinds.py"
    body = ("import os\n"
            "FROZEN = frozenset({'relu', 'gelu', 'tanh'})\n"
            "OUT = os.getcwd()\n"
            "LAYERS = [64, 128]\n"
            "class Obj:\n    def __call__(self, point):\n        return len(FROZEN) * point['x']\n"
            "def uses_constants(point, k=None):\n    return sum(LAYERS) + len(OUT) + point['x']\n"
            "LAMBDA = lambda point: point['x'] ** 2  # noqa\n")
    module.write_text(body)

    def fingerprints(cwd: Path) -> list[str]:
        done = subprocess.run([sys.executable, "-c", IDENTITY_PROBE.format(folder=str(tmp_path))], cwd=cwd,
                              env=child_env(), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    (tmp_path / "elsewhere").mkdir()
    first = fingerprints(tmp_path)
    assert fingerprints(tmp_path / "elsewhere") == first  # another run, hash seed and working folder
    module.write_text(body.replace("[64, 128]", "[64, 256]"))
    assert fingerprints(tmp_path) != first  # a list it reads changed


def test_resuming_with_other_space_or_objective_code_is_refused_but_budget_and_algo_may_change(tmp_path,
                                                                                            monkeypatch, capsys):
    import importlib

    module = tmp_path / "user_objective.py"
    module.write_text("def loss(point):\n    return point['x'] ** 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    user = importlib.import_module("user_objective")
    settings = _quick_settings(tmp_path)
    with st.Study(settings, space=QUICK, objective=user.loss) as study:
        study.optimize()
    with pytest.raises(ConfigError, match="search space code"):
        st.Study(settings, space={"x": hp.uniform("x", -3, 3)}, objective=user.loss)
    with pytest.raises(ConfigError, match="search space code"):  # another search's settings too: its code first
        st.Study(settings.replace(seed=7), space={"x": hp.uniform("x", -3, 3)}, objective=user.loss)
    module.write_text("def loss(point):\n    return point['x'] ** 2 + 1\n")  # same name, other code
    user = importlib.reload(user)
    with pytest.raises(ConfigError, match="objective code"):
        st.Study(settings, space=QUICK, objective=user.loss)
    module.write_text("def loss(point):\n    return point['x'] ** 2\n")
    user = importlib.reload(user)
    capsys.readouterr()
    with st.Study(settings.replace(max_evals=5, algo="tpe", threads=3), space=QUICK, objective=user.loss) as study:
        assert len(study.optimize()) == 5
    assert "note: this search's last run used --algo rand; it goes on with --algo tpe (give --algo rand to keep " \
           "it)" in capsys.readouterr().out
    with st.Study(settings.replace(max_evals=6, algo="tpe"), space=QUICK, objective=user.loss) as study:
        assert len(study.optimize()) == 6
    assert "last run used" not in capsys.readouterr().out  # the same algorithm again: nothing to say


def test_a_corrupt_trials_file_is_refused_and_left_untouched(tmp_path):
    settings = _quick_settings(tmp_path)
    path = Path(settings.trials_file)
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(TrialsFileError, match="is corrupt or unreadable") as err:
        st.Study(settings, space=QUICK, objective=square)
    assert "move it away or delete it to start a new search" in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == b"\x80\x04garbage"
    with pytest.raises(TrialsFileError, match=f"--trials-file {tmp_path} is a folder: give a file in it"):
        st.Study(settings.replace(trials_file=str(tmp_path)), space=QUICK, objective=square)


def test_a_results_dir_that_cannot_be_a_folder_is_refused_in_one_line_before_any_trial(tmp_path):
    calls = []

    def counted(point):
        calls.append(point)
        return square(point)

    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    for results_dir, reason in ((a_file, "it is a file"), (a_file / "results", "Not a directory")):
        with pytest.raises(ConfigError, match=f"--results-dir {results_dir} cannot be a folder of results "
                                              f"\\({reason}\\)") as err:
            st.Study(_quick_settings(tmp_path, results_dir=str(results_dir)), space=QUICK, objective=counted)
        assert "\n" not in str(err.value)
    assert calls == [] and a_file.read_text() == "mine"


def test_two_searches_on_one_trials_file_are_refused(tmp_path):
    settings = _quick_settings(tmp_path)
    with st.Study(settings, space=QUICK, objective=square):
        with pytest.raises(StoreError, match="in use by another search"):
            st.Study(settings, space=QUICK, objective=square)


# --- attempts: a point that kills the process does not loop forever -----------------------------------

def test_a_trial_that_kills_its_process_is_failed_after_max_attempts_and_the_search_goes_on(tmp_path):
    args = [sys.executable, "-m", "hks", "search", "--space", "tests.objectives_for_tests", "--objective",
            "tests.objectives_for_tests:dies_on_first_trial", "--max-evals", "3", "--max-attempts", "2",
            "--algo", "rand", "--no-plots", "--results-dir", str(tmp_path / "results"),
            "--trials-file", str(tmp_path / "results.pkl")]
    run = [subprocess.run(args, cwd=ROOT, env=child_env(HKS_TEST_TRIAL_SECONDS="0"), capture_output=True,
                          text=True, timeout=120) for _ in range(3)]
    assert [r.returncode for r in run] == [-9, -9, 0], run[-1].stderr
    jobs = _records(tmp_path / "results.pkl")
    assert [(j.tid, j.state, j.attempts) for j in jobs] == [(0, p.FAILED, 2), (1, p.DONE, 1), (2, p.DONE, 1)]
    assert "gave up after 2 attempts" in jobs[0].error
    assert "trial 3/3" in run[-1].stdout


# --- every sampler with every runner: --algo gp on two workers -------------------------------------------

def test_gp_runs_on_two_local_workers_and_resumes(tmp_path):
    args = [sys.executable, "-m", "hks", "search", "--algo", "gp", "--gp-space", "tests/spaces/flat_space.py",
            "--objective", "tests.objectives_for_tests:flat_quadratic", "--workers", "2", "--gp-init-trials", "3",
            "--max-evals", "6", "--results-dir", str(tmp_path / "results"), "--lease-seconds", "30"]
    done = subprocess.run(args, cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "started 2 local workers" in done.stdout and "trial 6/6" in done.stdout
    from hks.store import open_store

    with open_store(f"sqlite:///{tmp_path / 'results' / 'store.sqlite3'}") as store:
        [key] = [k for k in ("hks_cifar100",) if store.get_experiment(k)]
        jobs = store.load(key)
    assert len(jobs) == 6 and all(j.state == p.DONE and j.result["status"] == "ok" for j in jobs)
    logs = sorted((tmp_path / "results" / "workers").glob("worker-*.log"))
    assert len(logs) == 2 and all("serving experiment" in log.read_text() for log in logs)  # who trains what is timing
    points = {(round(j.result["space"]["x"], 9), j.result["space"]["kind"]) for j in jobs}
    assert len(points) == 6
    more = subprocess.run([*args[:args.index("--max-evals") + 1], "8", *args[args.index("--max-evals") + 2:]],
                          cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=400)
    assert more.returncode == 0, more.stdout[-2000:] + more.stderr[-2000:]
    assert "resuming search: 6/8 trials done" in more.stdout and "trial 8/8" in more.stdout
    with open_store(f"sqlite:///{tmp_path / 'results' / 'store.sqlite3'}") as store:
        resumed = store.load(key)
    assert [(j.tid, j.result["space"]) for j in resumed[:6]] == [(j.tid, j.result["space"]) for j in jobs]
    assert len(resumed) == 8 and all(j.state == p.DONE and j.attempts == 1 for j in resumed)  # none trained twice
    assert len({(round(j.result["space"]["x"], 9), j.result["space"]["kind"]) for j in resumed}) == 8


# --- the public API ----------------------------------------------------------------------------------

def test_ask_and_tell_drive_a_search_of_your_own_loop(tmp_path):
    settings = _quick_settings(tmp_path, algo="tpe", n_startup_trials=3, max_evals=12)
    with st.Study(settings, space=QUICK, objective=square) as study:
        for _ in range(12):
            trial = study.ask()
            study.tell(trial, square(trial.point))
        assert len(study.results) == 12 and study.remaining == 0
        assert abs(study.best["space"]["x"]) < 1.0
        with pytest.raises(ConfigError, match="the budget of 12 trials is spent"):
            study.ask()
    jobs = _records(settings.trials_file)
    assert [j.state for j in jobs] == [p.DONE] * 12


def test_ask_counts_trials_out_keeps_a_trial_never_told_for_the_next_run_and_refuses_another_studys(tmp_path):
    settings = _quick_settings(tmp_path, algo="rand", max_evals=3)
    with st.Study(settings, space=QUICK, objective=square) as study:
        first, second = study.ask(), study.ask()
        assert study.remaining == 1  # two are out being evaluated
        study.tell(first, 1.0)
        third = study.ask()
        with pytest.raises(ConfigError, match="budget of 3 trials is spent .*and 2 asked are not told yet"):
            study.ask()
        with pytest.raises(ConfigError, match="trial 0 was told already"):
            study.tell(first, 2.0)
        study.tell(third, 3.0)
    # the study closed with trial 2 (second) never told: it goes back to the queue, not "running" forever
    assert [j.state for j in _records(settings.trials_file)] == [p.DONE, p.NEW, p.DONE]
    other = st.Study(_quick_settings(tmp_path / "b", algo="rand", max_evals=3), space=QUICK, objective=square)
    with other, st.Study(settings, space=QUICK, objective=square) as study:
        again = study.ask()
        assert (again.tid, again.point) == (second.tid, second.point)  # the same point, asked again
        with pytest.raises(ConfigError, match="was not asked by this study"):
            study.tell(other.ask(), 5.0)
        study.tell(again, 2.0)
        assert study.remaining == 0 and len(study.results) == 3


def test_the_readme_api_example_runs(tmp_path):
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- api-example:begin -->")
    block = text[start:text.index("<!-- api-example:end -->")]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    script = tmp_path / "example.py"
    script.write_text(code)
    runs = [subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=child_env(), capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    assert [done.returncode for done in runs] == [0, 0], runs[-1].stderr[-3000:]
    assert "best" in runs[0].stdout and (tmp_path / "results.pkl").exists()
    # run again, both searches resume with nothing left to run, and each keeps its own results folder
    assert "trial 11/10" not in runs[1].stdout and "nothing to run" in runs[1].stdout
    assert len(_records(tmp_path / "ask_tell.pkl")) == 10
    assert len(list((tmp_path / "results" / "ask_tell").glob("*.json"))) == 10
    assert len(list((tmp_path / "results").glob("*.json"))) == 30


# --- layout ----------------------------------------------------------------------------------------------

def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (annotations only, never imported at run time)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(path: Path, package: Path) -> set[str]:
    """The hks modules a file imports, anywhere in it (lazy imports inside functions count too)."""
    module = ".".join(path.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__")
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "hks"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "hks":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                is_module = (package.parent / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                    (package.parent / Path(*candidate.split("."))).is_dir()
                found.add(candidate if is_module else node.module)
    found.discard(module)
    return found


def test_the_package_has_no_import_circles():
    package = ROOT / "hks"
    graph = {}
    for path in package.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        graph[name] = _imports(path, package)
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt in graph and not state.get(nxt):
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if not state.get(name):
            visit(name, [name])
    assert len([m for m in graph if m.endswith("search")]) <= 1


def test_a_worker_imports_only_what_running_a_trial_needs():
    code = ("import sys, hks.worker, hks.objective, hks.store.sql; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'pandas', 'matplotlib', 'sklearn', 'torch', "
            "'ax'}) + sorted(m for m in sys.modules if m.startswith(('hks.report', 'hks.study', 'hks.samplers'))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_running_search_rewrites_its_live_report(tiny_settings, monkeypatch):
    from hks import report

    written = []
    monkeypatch.setattr(st, "LIVE_REPORT_SECONDS", 0.0)
    real = report.safe_write_report
    monkeypatch.setattr(report, "safe_write_report", lambda snap, settings, **kw: written.append(snap)
                        or real(snap, settings, **kw))
    st.run_search(tiny_settings.replace(space=SMALL_SPACE, max_evals=2))
    live = [snap for snap in written if not isinstance(snap, list)]
    assert live and live[0].finished is False and live[0].budget == 2 and len(live[0].results) == 1
    assert (Path(tiny_settings.results_dir) / "report.html").stat().st_size > 1000


@pytest.mark.parametrize("algo, startup, warned", [("mtpe", "auto", "3 <= 10 start-up trials"),
                                                   ("tpe", "auto", "3 <= 20 start-up trials"),
                                                   ("mtpe", 2, None), ("rand", "auto", None)])
def test_a_budget_within_the_start_up_trials_is_warned_about_and_the_sampler_named(tmp_path, capsys, algo,
                                                                                   startup, warned):
    settings = _quick_settings(tmp_path, algo=algo, n_startup_trials=startup)
    with st.Study(settings, space=QUICK, objective=square) as study:
        study.optimize()
    out = capsys.readouterr().out
    assert f"starting search: 3 trials (--algo {algo})" in out
    assert ("never gets past its start-up phase" in out) == bool(warned) and (warned or "") in out


def test_an_objective_gets_the_arguments_it_declares_by_name_positional_or_not():
    from hks.config import Settings
    from hks.evaluation import call_objective

    seen = {}

    def by_position(point, tid):
        seen["tid"] = tid
        return 1.0

    def with_settings(point, settings, tid=None):
        seen["settings"], seen["tid2"] = settings, tid
        return 2.0

    settings = Settings()
    assert call_objective(by_position, {"x": 1}, settings, tid=4)["status"] == "ok" and seen["tid"] == 4
    assert call_objective(with_settings, {"x": 1}, settings, tid=5)["loss"] == 2.0
    assert seen["settings"] is settings and seen["tid2"] == 5


def test_atpe_models_past_its_start_up_trials(tmp_path, monkeypatch):
    from hyperopt import atpe

    asked = []  # the trial ids hyperopt's ATPE itself was asked for
    suggest = atpe.suggest
    monkeypatch.setattr(atpe, "suggest", lambda new_ids, *a, **k: asked.extend(new_ids) or suggest(new_ids, *a, **k))
    settings = _quick_settings(tmp_path, algo="atpe", n_startup_trials=3, max_evals=6)
    with st.Study(settings, space=QUICK, objective=square) as study:
        results = study.optimize()  # hyperopt's ATPE reads each trial's timestamps once it models
    assert [r["status"] for r in results] == ["ok"] * 6
    assert asked == [3, 4, 5]  # random start-up points first, then ATPE's own


def test_a_space_given_as_an_object_to_a_store_search_is_refused_unless_its_module_name_gives_it(tmp_path):
    from objectives_for_tests import SPACE

    import hks

    store = f"sqlite:///{tmp_path / 'store.db'}"
    with pytest.raises(ConfigError, match="workers build the search space from its module's name, and 'hks.space' "
                                          "holds another space"):
        hks.optimize("tests.objectives_for_tests:quadratic", SPACE, max_evals=2, storage=store, workers=1)
    study = hks.optimize("tests.objectives_for_tests:quadratic", "tests.objectives_for_tests", max_evals=2,
                         storage=str(tmp_path / "r.pkl"), results_dir=str(tmp_path / "r"))  # a space by name
    assert study.settings.space == "tests.objectives_for_tests" and len(study.results) == 2


def test_a_trials_file_goes_on_with_its_own_experiment_and_says_so_when_another_name_is_given(tmp_path, capsys):
    settings = _quick_settings(tmp_path, max_evals=1, experiment_name="classic")
    with st.Study(settings, space=QUICK, objective=square) as study:
        study.optimize()
    capsys.readouterr()
    with st.Study(settings.replace(experiment_name="other", max_evals=2), space=QUICK, objective=square) as study:
        assert study.exp_key == "classic"
    assert f"note: {settings.trials_file} holds experiment 'classic' and goes on with it" in capsys.readouterr().out
