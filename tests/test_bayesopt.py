"""--algo gp: flat spaces, the Ax loop (Sobol then GP), the fixed SGD model, resuming, missing Ax."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hks import cli
from hks.bayesopt import Choice, Float, Int, ax_loop
from hks.bayesopt.fixed_model import build_fixed, check_space, full_point
from hks.bayesopt.flat import check_flat_space, to_hyperopt
from hks.config import Settings
from hks.errors import ConfigError, SpaceError
from hks.samplers.ax_gp import AxSampler
from hks.space import SPACE as CLASSIC_SPACE
from hks.store import protocol as p
from hks.study import run_search

ROOT = Path(__file__).resolve().parents[1]

MIXED = {
    "x": Float(-5, 10),
    "rate": Float(1e-4, 1.0, log=True),
    "units": Int(1, 8),
    "width": Int(1, 1000, log=True),
    "kind": Choice(["a", "b", "c"]),
    "size": Choice([16, 32, 64, 128], ordered=True),
    "flag": Choice([True, False]),
}


def _in_space(point: dict, space: dict) -> bool:
    for name, param in space.items():
        value = point[name]
        if isinstance(param, Choice):
            if value not in param.values or type(value) is not type(param.values[0]):
                return False
        elif isinstance(param, Int):
            if not (isinstance(value, (int, np.integer)) and param.low <= value <= param.high):
                return False
        elif not (isinstance(value, float) and param.low <= value <= param.high):
            return False
    return True


# --- flat spaces -----------------------------------------------------------------------------

def test_flat_space_to_ax_parameters_keeps_kinds_bounds_and_scales():
    from hks.bayesopt.flat import to_ax_parameters

    configs = {c.name: c for c in to_ax_parameters(MIXED)}
    assert (configs["x"].parameter_type, configs["x"].bounds, configs["x"].scaling) == ("float", (-5.0, 10.0), "linear")
    assert (configs["rate"].scaling, configs["rate"].bounds) == ("log", (1e-4, 1.0))
    assert (configs["units"].parameter_type, configs["units"].bounds) == ("int", (1, 8))
    assert configs["width"].scaling == "log"
    assert (configs["kind"].values, configs["kind"].parameter_type, configs["kind"].is_ordered) == (
        ["a", "b", "c"], "str", False)
    assert (configs["size"].parameter_type, configs["size"].is_ordered) == ("int", True)
    assert configs["flag"].parameter_type == "bool"


def test_flat_space_to_hyperopt_samples_stay_in_range_with_their_types():
    from hyperopt.pyll.stochastic import sample

    space = to_hyperopt(MIXED)
    points = [sample(space, rng=np.random.default_rng(seed)) for seed in range(200)]
    assert all(_in_space(x, MIXED) for x in points), next(x for x in points if not _in_space(x, MIXED))
    # Int end points are reachable and an ordered choice reaches every value.
    assert {p["units"] for p in points} == set(range(1, 9))
    assert {p["size"] for p in points} == {16, 32, 64, 128}


@pytest.mark.parametrize("make, message", [
    (lambda: Float(1.0, 0.0), "low < high"),
    (lambda: Float(0.0, 1.0, log=True), "low > 0"),
    (lambda: Int(1.5, 4), "whole numbers"),
    (lambda: Choice(["only"]), "at least two"),
    (lambda: Choice([None, 3]), "str, int, float or bool"),
    (lambda: Choice(["a", 1]), "one type"),
])
def test_invalid_parameters_are_one_line_space_errors(make, message):
    with pytest.raises(SpaceError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_a_hyperopt_space_is_refused_as_not_flat():
    with pytest.raises(SpaceError, match="not flat: lr_rate_mult"):
        check_flat_space(CLASSIC_SPACE, "--gp-space hks.space")


# --- the fixed model -------------------------------------------------------------------------

def test_fixed_model_trains_with_the_points_sgd_settings_and_overrides():
    point = full_point({"learning_rate": 0.05, "momentum": 0.9, "weight_decay": 1e-5, "fc_dropout_drop_proba": 0.0})
    model = build_fixed(point, 10, None)
    optimizer = model.optimizer
    assert type(optimizer).__name__ == "SGD"
    assert math.isclose(float(optimizer.learning_rate), 0.05, rel_tol=1e-6)
    assert (optimizer.momentum, optimizer.weight_decay) == (0.9, 1e-5)
    assert not any(type(layer).__name__ == "Dropout" and layer.rate == 0.3 for layer in model.layers)
    assert set(model.output_names) == {"fine"}


def test_without_learning_rate_in_the_space_base_lr_applies_and_auto_is_refused(tmp_path):
    model = build_fixed(full_point({"momentum": 0.5}), 10, None, base_lr=0.02)
    assert math.isclose(float(model.optimizer.learning_rate), 0.02, rel_tol=1e-6)
    assert model.optimizer.momentum == 0.5
    with pytest.raises(ConfigError, match="--base-lr auto does not apply to --algo gp"):
        run_search(Settings(algo="gp", base_lr="auto", results_dir=str(tmp_path),
                            trials_file=str(tmp_path / "results.pkl")))
    assert not any(tmp_path.iterdir())


def test_a_key_that_is_no_optimizer_argument_fails_before_training():
    with pytest.raises(SpaceError, match="momentun.*keras.optimizers.SGD"):
        check_space({"learning_rate": Float(1e-3, 1.0, log=True), "momentun": Float(0.0, 1.0)}, "--gp-space x")
    # Every optimizer a choice can pick must accept the other keys (Adam has no momentum).
    with pytest.raises(SpaceError, match="keras.optimizers.Adam"):
        check_space({"momentum": Float(0.0, 1.0), "optimizer": Choice(["SGD", "Adam"])}, "--gp-space x")
    with pytest.raises(SpaceError, match="keras.optimizers.RMSprop.*nesterov"):
        check_space({"nesterov": Choice([False, True]), "optimizer": Choice(["SGD", "RMSprop"])}, "--gp-space x")
    check_space({"learning_rate": Float(1e-3, 1.0, log=True), "nesterov": Choice([False, True]),
                 "batch_size": Int(32, 256)}, "--gp-space x")
    check_space({"learning_rate": Float(1e-3, 1.0, log=True), "optimizer": Choice(["SGD", "RMSprop"])}, "x")


# --- missing Ax ------------------------------------------------------------------------------

def test_gp_without_ax_is_a_one_line_error_naming_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ax", None)  # what an absent package looks like to import
    with pytest.raises(ConfigError, match=r"pip install -e \.\[bo\]"):
        ax_loop.import_ax()
    code = cli.main(["search", "--algo", "gp", "--results-dir", str(tmp_path), "--max-evals", "1",
                     "--trials-file", str(tmp_path / "results.pkl"),
                     "--no-plots", "--no-download", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "pip install -e .[bo]" in err and "torch" in err
    assert not (tmp_path / "results.pkl").exists()


# --- the Ax loop on a cheap objective ----------------------------------------------------------

@pytest.fixture
def ax_clients(monkeypatch) -> list:
    """Each suggestion's Ax client, as the sampler built it: what it was told and which of its nodes proposed."""
    clients, new_client = [], ax_loop.new_client
    monkeypatch.setattr(ax_loop, "new_client", lambda *a, **k: clients.append(new_client(*a, **k)) or clients[-1])
    return clients


def _record(sampler, tid, doc, loss):
    job = p.Job("e", tid, doc=doc)
    if loss is None:
        return job
    point = sampler._point(job)
    job.state, job.result = p.DONE, {"status": "ok" if loss == loss else "fail", "loss": loss if loss == loss
                                     else None, "space": point}
    return job


def test_importing_ax_logs_nothing_to_the_console():
    code = "from hks.bayesopt.ax_loop import import_ax; import_ax()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "INFO" not in done.stderr and not done.stdout, done.stderr


def test_the_gp_sampler_goes_from_sobol_to_the_gp_with_failures_and_pending_points(tmp_path, ax_clients):
    space_file = tmp_path / "mixed_space.py"
    space_file.write_text("from hks.bayesopt import Choice, Float, Int\n"
                          "SPACE = {'x': Float(-5, 10), 'rate': Float(1e-4, 1.0, log=True), 'units': Int(1, 8), "
                          "'kind': Choice(['a', 'b', 'c']), 'size': Choice([16, 32, 64, 128], ordered=True)}\n")
    from hks.space import load_space

    settings = Settings(algo="gp", space=str(space_file), gp_init_trials=3, seed=3, threads=1)
    sampler = AxSampler(settings, load_space(str(space_file)))
    history = []

    def loss(point):
        return (point["x"] - 1) ** 2 + math.log(point["rate"]) ** 2 + point["units"] + (point["kind"] != "b")

    sobol = sampler.suggest(history, [0, 1, 2, 3])
    assert sobol == sampler.suggest(history, [0, 1, 2, 3])  # quasi-random by trial id: the same on resume
    assert not ax_clients  # no Ax model before 3 trials have a loss
    for tid, doc in enumerate(sobol):
        point = sampler._point(p.Job("e", tid, doc=doc))
        history.append(_record(sampler, tid, doc, float("nan") if tid == 2 else loss(point)))
    history.append(p.Job("e", 4, doc=sampler.suggest(history, [4])[0]))  # tid 4 stays pending (running)
    pending_point = sampler._point(history[-1])
    batch = sampler.suggest(history, [5, 6])  # the GP proposes a batch of two around the pending one
    told = ax_clients[-1].summarize()
    assert sorted(told["loss"].dropna()) == sorted(j.result["loss"] for j in history if j.result
                                                   and j.result["loss"] is not None)  # the failed one left out
    running = told[told["trial_status"] == "RUNNING"]
    assert len(running) == 3 and {running.iloc[0][k] == v for k, v in pending_point.items()} == {True}
    assert list(running["generation_node"].iloc[1:]) == ["MBM"] * 2  # BoTorch's model, not Ax's Sobol or centre
    points = [sampler._point(p.Job("e", 5 + i, doc=doc)) for i, doc in enumerate(batch)]
    assert points[0] != points[1] and pending_point not in points
    for point in points:
        assert -5 <= point["x"] <= 10 and 1 <= point["units"] <= 8 and point["kind"] in "abc"
        assert point["size"] in (16, 32, 64, 128)


def test_the_gp_proposes_each_single_suggestion_of_a_one_worker_search(tmp_path, ax_clients):
    """A sequential search asks one point at a time, each from a fresh client: every one after the start-up
    points must come from the GP (Ax's own initial nodes would otherwise propose it, every time)."""
    space_file = tmp_path / "flat.py"
    space_file.write_text("from hks.bayesopt import Float, Int\nSPACE = {'x': Float(-5, 10), 'units': Int(1, 8)}\n")
    from hks.space import load_space

    sampler = AxSampler(Settings(algo="gp", space=str(space_file), gp_init_trials=3, seed=3, threads=1),
                        load_space(str(space_file)))
    history = []
    for tid in range(6):
        doc = sampler.suggest(history, [tid])[0]
        point = sampler._point(p.Job("e", tid, doc=doc))
        history.append(_record(sampler, tid, doc, (point["x"] - 1) ** 2 + abs(point["units"] - 3)))
    nodes = [client.summarize()["generation_node"].iloc[-1] for client in ax_clients]
    assert nodes == ["MBM"] * 3  # trials 3, 4 and 5


# --- the real search ---------------------------------------------------------------------------

@pytest.fixture
def gp_settings(tmp_path: Path, cifar10_dir: Path) -> Settings:
    return Settings(dataset="cifar10", data_dir=str(cifar10_dir), download=False, dataset_size=600, epochs=1,
                    patience=1, threads=1, algo="gp", max_evals=3, gp_init_trials=2, plots=False,
                    results_dir=str(tmp_path / "results"), trials_file=str(tmp_path / "results.pkl"))


def test_real_gp_search_writes_results_and_resumes_exactly(gp_settings, capsys):
    first = run_search(gp_settings)
    assert len(first) == 3 and Path(gp_settings.trials_file).exists()
    out = capsys.readouterr().out
    assert "trial 3/3:" in out and "best" in out
    starts = [line for line in out.splitlines() if " started on " in line]  # one line per trial, with its rate
    assert len(starts) == 3 and all("learning_rate " in line and "lr x" not in line for line in starts), starts

    second = run_search(gp_settings.replace(max_evals=5))
    assert "resuming search: 3/5 trials done" in capsys.readouterr().out
    assert [r["tid"] for r in second] == [0, 1, 2, 3, 4]
    assert [r["model_name"] for r in second[:3]] == [r["model_name"] for r in first]
    on_disk = [json.loads(p.read_text()) for p in Path(gp_settings.results_dir).glob("*.txt.json")]
    assert len(on_disk) == 5  # no trial repeated
    flat = [(r["space"]["learning_rate"], r["space"]["momentum"], r["space"]["weight_decay"]) for r in on_disk]
    assert len(set(flat)) == 5
    for result in on_disk:
        assert set(CLASSIC_SPACE) <= set(result["space"]) and result["space"]["optimizer"] == "SGD"
        assert 1e-4 <= result["space"]["learning_rate"] <= 1.0 and 0 <= result["space"]["momentum"] <= 1
        if result["status"] == "ok":
            assert result["loss"] == -result["fine_best_accuracy"] and "val_fine_accuracy" in result["history"]
    assert [r["model_name"] for r in run_search(gp_settings.replace(max_evals=5))] == \
        [r["model_name"] for r in second]  # budget reached: nothing retrained

    saved = Path(gp_settings.trials_file).read_bytes()
    other = Path(gp_settings.results_dir).parent / "other_space.py"
    other.write_text("from hks.bayesopt import Float\nSPACE = {'learning_rate': Float(1e-3, 1e-1, log=True)}\n")
    with pytest.raises(ConfigError, match="was made with --space"):
        run_search(gp_settings.replace(gp_space=str(other), max_evals=6))
    assert Path(gp_settings.trials_file).read_bytes() == saved


def _flat_loss(point):
    return (point["x"] - 1) ** 2 + (0.5 if point["kind"] == "b" else 0.0)


@pytest.mark.parametrize("algo", ["gp", "tpe"])
def test_a_flat_space_given_to_the_api_is_searched_as_itself_by_any_sampler(tmp_path, algo):
    import hks

    space = {"x": Float(-5, 5), "kind": Choice(("a", "b"))}
    study = hks.optimize(_flat_loss, space, max_evals=4, storage=":memory:", algo=algo, gp_init_trials=2, threads=1,
                         results_dir=str(tmp_path / "r"))
    points = [r["space"] for r in study.results]
    assert [r["status"] for r in study.results] == ["ok"] * 4  # gp used to look for --gp-space's module instead
    assert all(set(p) == {"x", "kind"} and -5 <= p["x"] <= 5 and p["kind"] in ("a", "b") for p in points)


def test_gp_searches_a_flat_space_named_by_its_module_not_gp_space(tmp_path, monkeypatch):
    import hks

    (tmp_path / "my_flat.py").write_text("from hks.bayesopt import Choice, Float\n"
                                         "SPACE = {'x': Float(-5, 5), 'kind': Choice(('a', 'b'))}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    study = hks.optimize(_flat_loss, "my_flat", max_evals=3, storage=":memory:", algo="gp", gp_init_trials=2,
                         threads=1, results_dir=str(tmp_path / "r"))
    assert [set(r["space"]) for r in study.results] == [{"x", "kind"}] * 3 and study.settings.space == "my_flat"


def test_the_gp_takes_trials_whose_choice_among_floats_and_ints_is_an_int(tmp_path):
    """``Choice([0.001, 0.1, 1])`` is a float parameter in Ax, which refused the int 1 once the GP modelled."""
    from hks.samplers.ax_gp import job_doc

    space_file = tmp_path / "rates.py"
    space_file.write_text("from hks.bayesopt import Choice, Float\n"
                          "SPACE = {'rate': Choice([0.001, 0.1, 1]), 'x': Float(0, 1)}\n")
    from hks.space import load_space

    sampler = AxSampler(Settings(algo="gp", space=str(space_file), gp_init_trials=3, seed=1, threads=1),
                        load_space(str(space_file)))
    points = [{"rate": 1, "x": 0.2}, {"rate": 0.1, "x": 0.5}, {"rate": 1, "x": 0.9}, {"rate": 0.001, "x": 0.4}]
    history = [_record(sampler, tid, job_doc(sampler.flat, tid, point), point["x"]) for tid, point in enumerate(points)]
    history.append(p.Job("e", 4, doc=job_doc(sampler.flat, 4, {"rate": 1, "x": 0.7})))  # pending, with the int too
    [doc] = sampler.suggest(history, [5])
    point = sampler._point(p.Job("e", 5, doc=doc))
    assert point["rate"] in (0.001, 0.1, 1) and 0 <= point["x"] <= 1
