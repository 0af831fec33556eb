"""--algo mtpe: hyperopt spaces in Optuna's terms, and the sampler under hyperopt's fmin and with pending trials."""

from __future__ import annotations

import functools
import math
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from hyperopt import JOB_STATE_DONE, STATUS_OK, Domain, Trials, fmin, hp, rand, space_eval
from hyperopt.pyll import scope

from hks.config import Settings, resolve
from hks.errors import SpaceError
from hks.samplers import mtpe
from hks.samplers.hyperopt_algos import hyperopt_algorithm
from hks.samplers.optuna_space import ask_values, idxs_vals, translate, values_from_misc
from hks.space import SPACE

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/

GRID = {"a": hp.choice("a", ["x", "y", "z"]), "b": hp.choice("b", [0, 1])}  # six points in all
NESTED = {"depth": hp.choice("depth", [None, scope.int(hp.quniform("units", 1, 4, 1))]),
          "lr": hp.loguniform("lr", -3, 0), "k": hp.randint("k", 2, 6)}


def grid_loss(p):
    return {"x": 0.0, "y": 1.0, "z": 2.0}[p["a"]] + p["b"]


def nested_loss(p):
    return abs(math.log(p["lr"]) + 1) + (1.0 if p["depth"] is None else abs(p["depth"] - 3) / 3) + abs(p["k"] - 4)


def _point(doc):
    return {k: v[0] for k, v in doc["misc"]["vals"].items() if v}


def _finish(trials, loss_fn, space):
    """Give every pending trial its loss, as a worker would."""
    for doc in trials.trials:
        if doc["state"] != JOB_STATE_DONE:
            loss = loss_fn(space_eval(space, _point(doc)))
            doc["result"], doc["state"] = {"status": STATUS_OK, "loss": loss}, JOB_STATE_DONE
    trials.refresh()


def _ask(trials, space, ids, seed, **knobs):
    docs = mtpe.suggest(ids, Domain(lambda p: 0.0, space), trials, seed, **knobs)
    trials.insert_trial_docs(docs)
    trials.refresh()
    return docs


def test_translation_keeps_the_conditions_and_round_trips_hyperopt_values():
    params = {p.label: p for p in translate(SPACE)}
    assert params["residual_units"].conditions == ((("residual", 1),),)
    assert params["fc_units_2_mult"].conditions == ((("one_more_fc", 1),),)
    assert params["optimizer"].kind == "choice" and params["optimizer"].distribution.choices == (0, 1, 2)
    assert (params["batch_size"].distribution.low, params["batch_size"].distribution.high) == (20, 140)
    assert list(params).index("residual") < list(params).index("residual_units")  # parents first
    trials = Trials()
    fmin(lambda p: 0.0, SPACE, algo=rand.suggest, max_evals=30, trials=trials, rstate=np.random.default_rng(0),
         show_progressbar=False)
    plist = translate(SPACE)
    for doc in trials.trials:
        idxs, vals = idxs_vals(plist, values_from_misc(plist, doc["misc"]), doc["tid"])
        assert vals == doc["misc"]["vals"] and idxs == doc["misc"]["idxs"]


def test_a_label_shared_by_several_branches_is_active_in_each_and_randint_keeps_its_offset():
    blocks = [hp.choice(f"b{i}", [8, 16]) for i in range(3)]
    params = {p.label: p for p in translate({"blocks": hp.choice("n", [blocks[:1], blocks[:2], blocks]),
                                             "k": hp.randint("k", 2, 6)})}
    assert params["b1"].conditions == ((("n", 1),), (("n", 2),))
    assert params["b1"].active({"n": 2}) and not params["b1"].active({"n": 0})
    assert (params["k"].distribution.low, params["k"].distribution.high) == (2, 5)


def test_an_unsupported_or_computed_bound_is_refused_with_a_clear_message():
    with pytest.raises(SpaceError, match="constants"):
        translate({"x": hp.uniform("x", 0, hp.uniform("hi", 1, 2))})


def test_fmin_runs_mtpe_and_same_seed_gives_same_search():
    def run(seed):
        trials = Trials()
        fmin(nested_loss, NESTED, algo=hyperopt_algorithm("mtpe"), max_evals=30, trials=trials,
             rstate=np.random.default_rng(seed), show_progressbar=False)
        return [_point(d) for d in trials.trials], trials.losses()

    first, losses = run(3)
    assert first == run(3)[0] and first != run(4)[0]
    assert min(losses) < min(losses[:10])  # the model improved on the start-up design


def test_no_point_is_ever_repeated_so_a_tiny_space_is_covered_exactly():
    trials = Trials()
    fmin(grid_loss, GRID, algo=mtpe.suggest, max_evals=6, trials=trials, rstate=np.random.default_rng(1),
         show_progressbar=False)
    assert sorted(map(tuple, (sorted(_point(d).items()) for d in trials.trials))) == sorted(
        (("a", a), ("b", b)) for a in range(3) for b in range(2))


def test_a_batch_after_start_up_has_no_near_duplicates_of_itself_or_of_pending_trials():
    space, trials = NESTED, Trials()
    _ask(trials, space, trials.new_trial_ids(12), seed=5)
    _finish(trials, nested_loss, space)
    _ask(trials, space, trials.new_trial_ids(4), seed=6)  # 4 pending
    docs = _ask(trials, space, trials.new_trial_ids(8), seed=7)
    assert len(docs) == 8
    space_ = mtpe.Space(translate(space), mtpe.Knobs().min_gap)
    encoded = space_.encode(mtpe.History.from_trials(space_.params, trials.trials).x)
    assert len(encoded) == 24
    for i in range(12, len(encoded)):
        assert not mtpe.near_duplicate(encoded[i], np.delete(encoded, i, axis=0), space_.tol)
    assert mtpe.near_duplicate(encoded[20] + space_.tol / 2, encoded, space_.tol)


def test_start_up_counts_finished_trials_only(monkeypatch):
    calls = []
    original = mtpe.Proposer.space_filling
    monkeypatch.setattr(mtpe.Proposer, "space_filling", lambda self: calls.append(1) or original(self))
    trials = Trials()
    _ask(trials, NESTED, trials.new_trial_ids(9), seed=1)
    _finish(trials, nested_loss, NESTED)
    _ask(trials, NESTED, trials.new_trial_ids(6), seed=2)  # 9 finished + 6 pending: still start-up
    assert len(calls) == 15
    _finish(trials, nested_loss, NESTED)
    calls.clear()
    _ask(trials, NESTED, trials.new_trial_ids(3), seed=3, local_prob=0.0)  # 15 finished: TPE
    assert calls == []


def test_identical_inputs_give_identical_batches():
    def batch():
        trials = Trials()
        _ask(trials, SPACE, trials.new_trial_ids(12), seed=11)
        _finish(trials, lambda p: p["lr_rate_mult"] + p["batch_size"] / 450, SPACE)
        return [_point(d) for d in _ask(trials, SPACE, trials.new_trial_ids(5), seed=12)]

    assert batch() == batch()


def test_failed_and_pending_trials_are_not_modelled_as_results_but_block_repeats():
    trials = Trials()
    _ask(trials, GRID, trials.new_trial_ids(5), seed=0)
    for doc in trials.trials[:3]:
        doc["result"], doc["state"] = {"status": "fail"}, JOB_STATE_DONE
    trials.refresh()
    history = mtpe.History.from_trials(translate(GRID), trials.trials)
    assert history.state.tolist() == [mtpe.OTHER] * 3 + [mtpe.PENDING] * 2 and history.n_done == 0
    last = _ask(trials, GRID, trials.new_trial_ids(1), seed=1)
    assert _point(last[0]) not in [_point(d) for d in trials.trials[:5]]


def test_optuna_define_by_run_gives_hyperopt_values_of_the_same_space():
    params = translate(NESTED)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        vals = ask_values(study.ask(), params)
        point = space_eval(NESTED, vals)
        assert 2 <= point["k"] <= 5 and math.exp(-3) <= point["lr"] <= 1
        assert ("units" in vals) == (point["depth"] is not None)


def test_algo_mtpe_is_a_setting_and_beats_random_search_on_a_conditional_problem():
    assert resolve({"algo": "mtpe"}).algo == "mtpe"
    from bench.problems import conv_blocks

    problem = conv_blocks()

    def regret(algo, seed):
        trials = Trials()
        fmin(problem.objective, problem.hyperopt(), algo=algo, max_evals=60, trials=trials,
             rstate=np.random.default_rng(seed), show_progressbar=False)
        return min(trials.losses()) - problem.optimum

    seeds = range(5)
    assert np.median([regret(mtpe.suggest, s) for s in seeds]) < np.median([regret(rand.suggest, s) for s in seeds])


@pytest.mark.parametrize("knob", [{"n_startup": 0, "local_prob": 1.0, "branch_prob": 1.0}, {"local_prob": 1.0},
                                  {"explore_prob": 1.0}])
def test_extreme_knobs_still_suggest(knob):
    trials = Trials()
    fmin(nested_loss, NESTED, algo=functools.partial(mtpe.suggest, **knob), max_evals=15, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    assert len(trials.trials) == 15


# Two model families: "easy" is good everywhere (0.5 to 0.55), "hard" is better (down to 0.3) but
# only in a small corner, so its random points look far worse (about 1.6 on average).
TWO_BRANCHES = {"m": hp.choice("m", [{"k": "easy", "x": hp.uniform("x", 0, 1)},
                                     {"k": "hard", "y": hp.uniform("y", 0, 1), "z": hp.uniform("z", 0, 1)}])}


def two_branch_loss(p):
    m = p["m"]
    return 0.5 + 0.2 * (m["x"] - 0.5) ** 2 if m["k"] == "easy" else 0.3 + 2 * abs(m["y"] - 0.8) + 2 * abs(m["z"] - 0.2)


def _found_hard_branch(seed, **knobs):
    trials = Trials()
    fmin(two_branch_loss, TWO_BRANCHES, algo=functools.partial(mtpe.suggest, **knobs), max_evals=80, trials=trials,
         rstate=np.random.default_rng(seed), show_progressbar=False)
    return min(trials.losses()) < 0.5


def test_a_branch_whose_random_points_look_worse_is_not_starved_and_its_better_region_is_found():
    seeds = range(6)
    assert sum(_found_hard_branch(s) for s in seeds) >= 5
    assert sum(_found_hard_branch(s, arm_prob=0.0) for s in seeds) < sum(_found_hard_branch(s) for s in seeds)


def test_the_branch_bandit_plays_each_top_level_branch_and_is_seeded():
    space_ = mtpe.Space(translate(TWO_BRANCHES), mtpe.Knobs().min_gap)
    assert [space_.params[j].label for j in space_.top] == ["m"] and space_.arms(64).tolist() == [[0.0], [1.0]]

    def run():
        trials = Trials()
        fmin(two_branch_loss, TWO_BRANCHES, algo=functools.partial(mtpe.suggest, arm_prob=1.0), max_evals=30,
             trials=trials, rstate=np.random.default_rng(2), show_progressbar=False)
        return [_point(d) for d in trials.trials]

    points = run()
    assert points == run()
    assert 8 <= sum(p["m"] == 1 for p in points[10:]) <= 12  # the bandit's turns alternate once both were tried


@pytest.mark.parametrize("knobs", [{}, {"arm_prob": 1.0}, {"local_prob": 1.0}])
def test_a_pending_batch_in_a_branching_space_has_no_near_duplicates(knobs):
    trials = Trials()
    _ask(trials, TWO_BRANCHES, trials.new_trial_ids(12), seed=3)
    _finish(trials, two_branch_loss, TWO_BRANCHES)
    _ask(trials, TWO_BRANCHES, trials.new_trial_ids(8), seed=4, **knobs)
    space_ = mtpe.Space(translate(TWO_BRANCHES), mtpe.Knobs().min_gap)
    encoded = space_.encode(mtpe.History.from_trials(space_.params, trials.trials).x)
    for i in range(12, 20):
        assert not mtpe.near_duplicate(encoded[i], np.delete(encoded, i, axis=0), space_.tol)


def test_hks_lies_about_pending_trials_are_read_back_as_pending():
    from hks.samplers import make_sampler
    from hks.store import protocol as p
    from hks.store.hyperopt_docs import trials_from_docs

    sampler = make_sampler(resolve({"algo": "mtpe", "seed": 1}), NESTED)
    done = []
    for tid, doc in enumerate(sampler.suggest([], list(range(3)))):
        job = p.Job("e", tid, state=p.DONE, doc=doc, result={"status": "ok", "loss": float(tid)})
        done.append(job)
    pending = p.Job("e", 3, doc=sampler.suggest(done, [3])[0])
    docs, _ = sampler.docs.lied([*done, pending])
    history = mtpe.History.from_trials(translate(NESTED), trials_from_docs(docs).trials)
    assert history.state.tolist() == [mtpe.DONE] * 3 + [mtpe.PENDING] and history.n_done == 3


def test_the_first_batch_of_many_workers_through_the_sampler_covers_a_tiny_space_without_repeats():
    """Before any trial has a loss, hks's sampler still shows mtpe the pending points of the batch."""
    from hks.samplers import make_sampler
    from hks.store import protocol as p

    tiny = {"a": hp.choice("a", [0, 1, 2]), "b": hp.choice("b", ["x", "y"])}
    sampler = make_sampler(resolve({"algo": "mtpe", "seed": 5}), tiny)
    docs = sampler.suggest([], list(range(6)))
    points = {tuple(p.Job("e", tid, doc=doc).vals().items()) for tid, doc in enumerate(docs)}
    assert len(points) == 6


def test_mtpe_is_the_default_and_algo_tpe_stays_hyperopts_tpe_with_its_20_random_trials():
    from hyperopt import tpe

    from hks.samplers import make_sampler, startup_trials

    default = make_sampler(resolve({}), NESTED)
    assert default.name == "mtpe" and default.algorithm.func is mtpe.suggest and default.n_startup == 0
    classic = make_sampler(resolve({"algo": "tpe"}), NESTED)
    assert classic.algorithm.func is tpe.suggest and classic.n_startup == 20
    assert [startup_trials(resolve({"algo": a})) for a in ("tpe", "atpe", "mtpe", "rand", "anneal")] == [
        20, 20, mtpe.Knobs.n_startup, None, None]
    help_text = Settings.__dataclass_fields__["n_startup_trials"].metadata["help"]
    assert f"20 for hyperopt's, {mtpe.Knobs.n_startup} for mtpe" in help_text  # the help says what auto does


@pytest.mark.parametrize("count", [3, 6])
def test_n_startup_trials_sets_how_many_finished_trials_mtpe_spreads_before_modelling(monkeypatch, count):
    from hks.samplers import make_sampler
    from hks.store import protocol as p

    filled = []
    original = mtpe.Proposer.space_filling
    monkeypatch.setattr(mtpe.Proposer, "space_filling",
                        lambda self, fixed=None: filled.append(self.history.n_done) or original(self, fixed))
    flat = {"x": hp.uniform("x", 0, 1), "y": hp.uniform("y", 0, 1)}
    sampler = make_sampler(resolve({"algo": "mtpe", "seed": 2, "n_startup_trials": count}), flat)
    history = []
    for tid in range(10):
        job = p.Job("e", tid, doc=sampler.suggest(history, [tid])[0])
        job.state, job.result = p.DONE, {"status": "ok", "loss": sum(job.vals().values())}
        history.append(job)
    assert filled == list(range(count))


def test_a_space_mtpe_cannot_model_is_refused_before_the_search_with_the_way_out():
    from hks.errors import SpaceError
    from hks.samplers import make_sampler

    computed = {"x": hp.uniform("x", 0, hp.uniform("top", 1, 2))}
    with pytest.raises(SpaceError, match=r"--algo mtpe cannot model this space: .*bounds must be constants.*"
                                         r"--algo tpe") as err:
        make_sampler(resolve({}), computed)
    assert "\n" not in str(err.value)
    assert make_sampler(resolve({"algo": "tpe"}), computed).suggest([], [0])  # hyperopt's TPE still searches it


SIX = {f"p{i}": hp.uniform(f"p{i}", 0, 1) for i in range(6)}


def _moved_by_a_batch_of_local_moves(seed: int, **knobs) -> list[set[int]]:
    """The parameters that each of a batch of 6 local moves changed, against the best of 12 finished trials."""
    trials = Trials()
    _ask(trials, SIX, trials.new_trial_ids(12), seed=seed)
    _finish(trials, lambda p: sum((v - 0.3) ** 2 for v in p.values()), SIX)
    _ask(trials, SIX, trials.new_trial_ids(6), seed=seed + 100, local_prob=1.0, pending_local_prob=1.0, **knobs)
    space = mtpe.Space(translate(SIX), mtpe.Knobs().min_gap)
    history = mtpe.History.from_trials(space.params, trials.trials)
    encoded = space.encode(history.x)
    changed = mtpe.differences(encoded[history.ranked()[0]], encoded[12:], space.tol)
    return [set(np.flatnonzero(row)) for row in changed]


def _first_three_disjoint(seed: int, **knobs) -> bool:
    moves = _moved_by_a_batch_of_local_moves(seed, **knobs)[:3]  # at most 6 parameters in all
    return sum(map(len, moves)) == len(set().union(*moves))


def test_with_spread_a_batch_of_local_moves_prefers_the_parameters_its_pending_moves_left_alone():
    """``spread`` is an ablation knob (off by default: bench/results/search_quality.md)."""
    seeds = range(12)
    assert all(_first_three_disjoint(seed, spread=1e-9) for seed in seeds)  # strict: never the same one twice
    spread = sum(_first_three_disjoint(seed, spread=0.25) for seed in seeds)
    independent = sum(_first_three_disjoint(seed, spread=1.0) for seed in seeds)
    assert spread > independent, (spread, independent)


def test_spread_changes_nothing_for_one_worker():
    def search(spread: float) -> list[dict]:
        trials = Trials()
        fmin(nested_loss, NESTED, algo=functools.partial(mtpe.suggest, spread=spread, local_prob=0.7), max_evals=30,
             trials=trials, rstate=np.random.default_rng(3), show_progressbar=False)
        return [_point(doc) for doc in trials.trials]

    assert mtpe.Knobs().spread == 1.0  # off
    assert search(0.25) == search(1.0)


def _insert(trials, space, values: dict, loss: float | None) -> None:
    """A trial at ``values``: finished with ``loss``, or pending (None)."""
    from hyperopt.base import miscs_update_idxs_vals

    tid = trials.new_trial_ids(1)[0]
    idxs, vals = idxs_vals(translate(space), values, tid)
    misc = {"tid": tid, "cmd": None, "workdir": None}
    miscs_update_idxs_vals([misc], idxs, vals)
    doc = trials.new_trial_docs([tid], [None], [{"status": "new"}], [misc])[0]
    if loss is not None:
        doc["result"], doc["state"] = {"status": STATUS_OK, "loss": loss}, JOB_STATE_DONE
    trials.insert_trial_docs([doc])
    trials.refresh()


def _siblings(pending: bool) -> Trials:
    """Ten poor random trials; a base; two moves from it that both improved it, each in its own
    parameter (p0: the best trial, p1: less); and, if ``pending``, one trial still out."""
    trials, rng = Trials(), np.random.default_rng(0)
    for _ in range(10):
        _insert(trials, SIX, {f"p{i}": float(rng.uniform(0.6, 1.0)) for i in range(6)}, 5.0)
    base = {f"p{i}": 0.5 for i in range(6)}
    _insert(trials, SIX, base, 3.0)
    _insert(trials, SIX, base | {"p0": 0.2}, 1.0)
    _insert(trials, SIX, base | {"p1": 0.8}, 2.0)
    if pending:
        _insert(trials, SIX, {f"p{i}": 0.05 for i in range(6)}, None)
    return trials


def test_with_trials_pending_a_local_move_carries_an_improving_sibling_over_to_the_best():
    trials, best = _siblings(pending=True), {"p0": 0.2} | {f"p{i}": 0.5 for i in range(1, 6)}
    [doc] = _ask(trials, SIX, trials.new_trial_ids(1), seed=0, local_prob=1.0, pending_local_prob=1.0, merge=1.0)
    assert _point(doc) == best | {"p1": 0.8}
    [doc] = _ask(trials, SIX, trials.new_trial_ids(1), seed=0, local_prob=1.0, pending_local_prob=1.0, merge=1.0)
    moved = {label for label, value in _point(doc).items() if value != best[label]}
    assert 1 <= len(moved) <= 2 and _point(doc) != best | {"p1": 0.8}  # merged once: then plain moves from the best


def test_merging_siblings_waits_for_pending_trials_and_changes_nothing_for_one_worker():
    def alone(merge: float) -> dict:
        [doc] = _ask(_siblings(pending=False), SIX, [13], seed=0, local_prob=1.0, pending_local_prob=1.0, merge=merge)
        return _point(doc)

    assert alone(1.0) == alone(0.0)

    def search(merge: float) -> list[dict]:
        trials = Trials()
        fmin(nested_loss, NESTED, algo=functools.partial(mtpe.suggest, merge=merge, local_prob=0.7), max_evals=30,
             trials=trials, rstate=np.random.default_rng(3), show_progressbar=False)
        return [_point(doc) for doc in trials.trials]

    assert search(1.0) == search(0.0)


def test_a_carried_over_move_that_opens_a_branch_brings_the_branch_values_of_the_trial_it_came_from():
    trials, rng = Trials(), np.random.default_rng(1)
    for _ in range(10):
        _insert(trials, NESTED, {"depth": 0, "k": int(rng.integers(2, 6)), "lr": float(rng.uniform(0.05, 0.1))}, 9.0)
    base = {"depth": 0, "k": 3, "lr": 0.3}
    _insert(trials, NESTED, base, 3.0)
    _insert(trials, NESTED, base | {"lr": 0.5}, 1.0)  # the best
    _insert(trials, NESTED, base | {"depth": 1, "units": 2}, 2.0)  # opened a branch and improved too
    _insert(trials, NESTED, {"depth": 0, "k": 5, "lr": 1.0}, None)
    [doc] = _ask(trials, NESTED, trials.new_trial_ids(1), seed=0, local_prob=1.0, pending_local_prob=1.0, merge=1.0)
    assert values_from_misc(translate(NESTED), doc["misc"]) == {"depth": 1, "units": 2, "k": 3, "lr": 0.5}


def test_while_trials_are_pending_local_moves_take_their_own_share(monkeypatch):
    """With several workers, neighbours of the best tried at once are the parallel hill-climb: the share of
    local moves is ``pending_local_prob`` from the second point of a batch on, and ``local_prob`` otherwise."""
    pending_seen = []
    original = mtpe.Proposer.local
    monkeypatch.setattr(mtpe.Proposer, "local",
                        lambda self, *args: pending_seen.append(self.history.n_pending) or original(self, *args))
    trials, rng = Trials(), np.random.default_rng(0)
    for _ in range(12):
        _insert(trials, SIX, {f"p{i}": float(rng.uniform()) for i in range(6)}, float(rng.uniform()))
    _ask(trials, SIX, trials.new_trial_ids(8), seed=0, local_prob=0.0, pending_local_prob=1.0, merge=0.0)
    assert pending_seen == [1, 2, 3, 4, 5, 6, 7]  # the first point had nothing pending: TPE's
    pending_seen.clear()
    _ask(trials, SIX, trials.new_trial_ids(4), seed=1, local_prob=1.0, pending_local_prob=0.0, merge=0.0)
    assert pending_seen == []  # the 8 above are still out
    assert mtpe.Knobs().pending_local_prob > mtpe.Knobs().local_prob


def test_the_pending_share_of_local_moves_changes_nothing_for_one_worker():
    def search(share: float) -> list[dict]:
        trials = Trials()
        fmin(nested_loss, NESTED, algo=functools.partial(mtpe.suggest, pending_local_prob=share), max_evals=30,
             trials=trials, rstate=np.random.default_rng(3), show_progressbar=False)
        return [_point(doc) for doc in trials.trials]

    assert search(0.0) == search(1.0)
