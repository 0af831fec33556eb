"""Pruners' decisions on hand-made learning curves, their settings, and what hyperopt is handed."""

import pytest
from hyperopt import Trials, fmin, hp, rand
from hyperopt.exceptions import InvalidResultStatus

from hks import config, pruners
from hks import results as res
from hks.config import Settings
from hks.errors import ConfigError
from hks.pruners import Curve
from hks.pruners.asha import AshaPruner
from hks.pruners.base import rung_epochs
from hks.pruners.hyperband import HyperbandPruner, bracket_count, bracket_sequence
from hks.pruners.median import MedianPruner
from hks.store.protocol import DONE, FAILED, NEW, RUNNING, Job


def replay(pruner, curves):
    """Run whole learning curves through a pruner in tid order, as a sequential search would:
    each trial goes epoch by epoch until pruned; returns {tid: (state, epochs run, rung)}."""
    recorded, out = [], {}
    for tid, curve in enumerate(curves):
        for epoch in range(1, len(curve) + 1):
            decision = pruner.decide(tid, curve[:epoch], recorded)
            if decision:
                break
        state = pruners.PRUNED if decision else pruners.FINISHED
        recorded.append(Curve(tid, state, tuple(curve[:epoch])))
        out[tid] = (state, epoch, decision.rung if decision else None)
    return out


def finished(tid, *values):
    return Curve(tid, pruners.FINISHED, values)


# --- rungs and the shared rules ------------------------------------------------------------------

def test_rungs_are_geometric_and_stop_before_the_last_epoch():
    assert rung_epochs(1, 3, 9) == [1, 3]
    assert rung_epochs(1, 3, 10) == [1, 3, 9]
    assert rung_epochs(2, 2, 20) == [2, 4, 8, 16]
    assert rung_epochs(5, 3, 5) == []


def test_unknown_curve_state_is_refused():
    with pytest.raises(ValueError, match="curve state 'done'"):
        Curve(1, "done", (0.1,))


# --- median ---------------------------------------------------------------------------------------

OTHERS = [finished(1, 0.5, 0.6, 0.7, 0.7), finished(2, 0.4, 0.5, 0.6, 0.6), finished(3, 0.3, 0.4, 0.5, 0.5)]


def test_median_stops_a_trial_below_the_median_of_the_others_at_its_epoch():
    pruner = MedianPruner(epochs=4, warmup_trials=3)
    below = pruner.decide(9, [0.35], OTHERS)
    assert below.prune and below.rung == 0 and "median 0.4000" in below.reason
    assert not pruner.decide(9, [0.45], OTHERS)


def test_median_ties_go_on_and_compares_best_so_far():
    pruner = MedianPruner(epochs=4, warmup_trials=3)
    assert not pruner.decide(9, [0.4], OTHERS)                    # equal to the median
    assert not pruner.decide(9, [0.55, 0.3], OTHERS)              # best 0.55 >= median 0.5 at epoch 2
    assert pruner.decide(9, [0.45, 0.3], OTHERS).rung == 1        # best 0.45 < 0.5


def test_median_waits_for_min_epochs_and_never_prunes_the_last_epoch():
    assert not MedianPruner(epochs=4, min_epochs=2, warmup_trials=3).decide(9, [0.0], OTHERS)
    assert MedianPruner(epochs=4, min_epochs=2, warmup_trials=3).decide(9, [0.0, 0.0], OTHERS).rung == 0
    assert not MedianPruner(epochs=4, warmup_trials=3).decide(9, [0.0] * 4, OTHERS)


def test_median_too_few_trials_and_failed_ones_ignored():
    failed = Curve(4, pruners.FAILED, (0.9, 0.9))
    short = Curve(5, pruners.RUNNING, (0.9,))            # running: counts at epoch 1 only
    decision = MedianPruner(epochs=4, warmup_trials=4).decide(9, [0.1, 0.1], [*OTHERS, failed, short])
    assert not decision and "3 trials recorded at epoch 2, fewer than 4" in decision.reason
    with_running = MedianPruner(epochs=4, warmup_trials=4).decide(9, [0.42], [*OTHERS, failed, short])
    assert with_running.prune and "median 0.4500 of 4 trials" in with_running.reason
    own = MedianPruner(epochs=4, warmup_trials=1).decide(1, [0.1], [finished(1, 0.9)])  # its own record
    assert not own and "0 trials" in own.reason


# --- ASHA -----------------------------------------------------------------------------------------

def test_asha_decides_only_at_rungs_and_keeps_the_top_third():
    pruner = AshaPruner(epochs=9, reduction_factor=3, warmup_trials=2)
    rung = [finished(t, v, v, v, v) for t, v in enumerate((0.1, 0.2, 0.3, 0.4, 0.5))]
    assert not pruner.decide(9, [0.45], rung)               # 6 records: top 2 go on, 1 better
    stopped = pruner.decide(9, [0.35], rung)                 # 2 better
    assert stopped.prune and stopped.rung == 0 and "2 of 5 trials better, top 2 go on" in stopped.reason
    between = pruner.decide(9, [0.0, 0.0], rung)             # epoch 2 is no rung
    assert not between and between.rung is None
    assert pruner.decide(9, [0.0, 0.0, 0.0], rung).rung == 1  # epoch 3 is the second rung


def test_asha_ties_go_on_too_few_trials_go_on_and_failed_trials_do_not_count():
    pruner = AshaPruner(epochs=9, reduction_factor=3, warmup_trials=2)
    assert not pruner.decide(9, [0.5], [finished(1, 0.5), finished(2, 0.5)])   # tie at the top: goes on
    assert pruner.decide(9, [0.4], [finished(1, 0.5), finished(2, 0.5)])
    alone = pruner.decide(9, [0.0], [finished(1, 0.5), Curve(2, pruners.FAILED, (0.9,))])
    assert not alone and "1 trials recorded at this rung, fewer than 2" in alone.reason


def test_asha_replay_which_trial_stops_at_which_rung():
    curves = [
        [0.30, 0.40, 0.50, 0.55, 0.60],   # t0: alone at every rung: finishes
        [0.20, 0.25, 0.30, 0.30, 0.30],   # t1: behind t0 at epoch 1 (2 records, top 1 goes on): rung 0
        [0.35, 0.38, 0.48, 0.60, 0.65],   # t2: best at epoch 1, behind t0 at epoch 2: rung 1
        [0.10, 0.50, 0.70, 0.70, 0.70],   # t3: slow start, 3 of 3 better at epoch 1 (keep 2): rung 0
        [0.40, 0.45, 0.49, 0.50, 0.50],   # t4: best at epochs 1 and 2, behind t0 at epoch 4: rung 2
        [0.25, 0.60, 0.61, 0.62, 0.63],   # t5: 3 of 6 better at epoch 1 (keep 3): rung 0
        [0.50, 0.70, 0.72, 0.80, 0.85],   # t6: best everywhere: finishes
    ]
    pruner = AshaPruner(epochs=5, min_epochs=1, reduction_factor=2, warmup_trials=1)
    assert pruner.rungs == [1, 2, 4]
    assert replay(pruner, curves) == {
        0: (pruners.FINISHED, 5, None), 1: (pruners.PRUNED, 1, 0), 2: (pruners.PRUNED, 2, 1),
        3: (pruners.PRUNED, 1, 0), 4: (pruners.PRUNED, 4, 2), 5: (pruners.PRUNED, 1, 0),
        6: (pruners.FINISHED, 5, None),
    }


def paused(tid, *values):
    return Curve(tid, pruners.PRUNED, values)


def test_asha_with_pauses_pauses_outside_the_top_n_over_eta_even_on_a_thin_rung():
    pruner = AshaPruner(epochs=9, reduction_factor=3, pause=True)
    first = pruner.decide(0, [0.9], [])
    assert first.prune and first.pause and first.rung == 0  # alone: 1 // 3 = 0 go on, it waits for the rung
    assert pruner.decide(2, [0.9], [paused(0, 0.5), paused(1, 0.4)]).pause is False  # best of 3: goes on
    assert pruner.decide(2, [0.45], [paused(0, 0.5), paused(1, 0.4)]).pause       # second of 3: waits
    assert not pruner.decide(9, [0.1, 0.1], [])  # between rungs: goes on
    stopped = AshaPruner(epochs=9, reduction_factor=3).decide(0, [0.9], [])
    assert not stopped and not stopped.pause  # without pauses a thin rung keeps its best


def test_promotion_resumes_the_best_waiting_trial_of_the_highest_rung_once_it_ranks_in_the_top():
    pruner = AshaPruner(epochs=9, reduction_factor=3, pause=True)  # rungs 1 and 3
    rung1 = [paused(0, 0.3), paused(1, 0.5), paused(2, 0.4)]
    assert pruner.promotion(rung1[:2], {0: 1, 1: 1}) is None  # 2 records: none in the top 2 // 3
    assert pruner.promotion(rung1, {0: 1, 1: 1, 2: 1}) == 1  # 3 records: the best goes on
    # t1 went on and waits at epoch 3 alone; t3 and t4 joined rung 1, whose top 5 // 3 = 1 is t1: nothing to do
    later = [paused(0, 0.3), paused(1, 0.5, 0.5, 0.6), paused(2, 0.4), paused(3, 0.2), paused(4, 0.45)]
    waiting = {0: 1, 1: 3, 2: 1, 3: 1, 4: 1}
    assert pruner.promotion(later, waiting) is None
    sixth = later + [paused(5, 0.1)]  # 6 records at rung 1: top 2 are t1 (resumed already) and t4
    assert pruner.promotion(sixth, {**waiting, 5: 1}) == 4
    # the highest rung goes first: with 3 trials at epoch 3, the best waiting there is resumed before rung 1's
    top = sixth + [paused(6, 0.7, 0.7, 0.7), paused(7, 0.6, 0.6, 0.55)]
    assert pruner.promotion(top, {**waiting, 5: 1, 6: 3, 7: 3}) == 6
    # a failed trial does not count (with its 0.9 it would top the rung, and nobody would be promoted);
    # of two equal trials the older goes first
    assert pruner.promotion([paused(0, 0.5), paused(1, 0.5), Curve(2, pruners.FAILED, (0.9,)), paused(3, 0.1)],
                            {0: 1, 1: 1, 3: 1}) == 0


def test_the_final_promotion_lets_a_thin_top_rung_keep_its_best_and_stopping_asha_never_promotes():
    pruner = AshaPruner(epochs=9, reduction_factor=3, pause=True)
    thin = [paused(0, 0.3, 0.3, 0.35), paused(1, 0.5, 0.5, 0.45), paused(2, 0.4), paused(3, 0.2)]
    assert pruner.promotion(thin, {0: 3, 1: 3, 2: 1, 3: 1}) is None
    assert pruner.promotion(thin, {0: 3, 1: 3, 2: 1, 3: 1}, final=True) == 1
    assert AshaPruner(epochs=9).promotion(thin, {0: 3, 1: 3}, final=True) is None
    assert MedianPruner(epochs=9).promotion(thin, {0: 3}, final=True) is None


def test_paused_trials_are_read_from_done_jobs_whose_result_says_paused():
    jobs = [Job("e", 0, state=DONE, result={"status": "pruned", "paused": True, "pruned_at_epoch": 3}),
            Job("e", 1, state=DONE, result={"status": "pruned", "pruned_at_epoch": 1}),
            Job("e", 2, state=NEW, metrics=[{"val_fine_accuracy": 0.4}]),
            Job("e", 3, state=NEW)]
    assert pruners.paused_trials(jobs) == {0: 3}
    curves = {c.tid: c for c in pruners.curves_from_jobs(jobs)}
    assert curves[2].values == (0.4,) and 3 not in curves  # a resumed trial waiting for a worker still counts


# --- Hyperband ------------------------------------------------------------------------------------

def test_hyperband_brackets_respect_the_epoch_budget():
    assert bracket_count(1, 3, 9, 0) == 3 and bracket_count(1, 3, 8, 0) == 2 and bracket_count(1, 3, 9, 2) == 2
    assert bracket_count(4, 3, 3, 0) == 1
    for epochs in range(1, 40):
        for eta in (2, 3, 4):
            pruner = HyperbandPruner(epochs, min_epochs=1, reduction_factor=eta)
            assert all(rung < epochs for rungs in pruner.bracket_rungs for rung in rungs)
            assert pruner.bracket_rungs[0] == rung_epochs(1, eta, epochs)
    assert HyperbandPruner(9).bracket_rungs == [[1, 3], [3], []]


def test_hyperband_assigns_brackets_from_the_tid_alone_in_hyperband_proportions():
    assert bracket_sequence([3, 1]) == [0, 0, 1, 0]
    pruner = HyperbandPruner(9)                    # 9, 5 and 3 trials in 17
    assert [pruner.sequence.count(b) for b in range(3)] == [9, 5, 3]
    restarted = HyperbandPruner(9)
    assert [pruner.bracket_of(t) for t in range(60)] == [restarted.bracket_of(t) for t in range(60)]
    assert pruner.bracket_of(3) == pruner.bracket_of(3 + 17)


def test_hyperband_runs_asha_within_each_bracket_only():
    pruner = HyperbandPruner(9, warmup_trials=1)
    aggressive = [t for t in range(17) if pruner.bracket_of(t) == 0]
    other = next(t for t in range(17) if pruner.bracket_of(t) == 1)
    me, rival = aggressive[0], aggressive[1]
    strong_elsewhere = finished(other, 0.9, 0.9, 0.9)
    lone = pruner.decide(me, [0.1], [strong_elsewhere])
    assert not lone and lone.bracket == 0 and "0 trials recorded" in lone.reason
    beaten = pruner.decide(me, [0.1], [strong_elsewhere, finished(rival, 0.5)])
    assert beaten.prune and beaten.bracket == 0 and beaten.rung == 0
    assert not pruner.decide(other, [0.0], [finished(o, 0.9) for o in aggressive])   # bracket 1: first rung is 3


# --- settings, store records and what hyperopt sees -----------------------------------------------

def test_make_pruner_builds_each_named_pruner_with_its_knobs():
    assert set(pruners.PRUNERS) == set(config.PRUNE_METHODS)
    settings = Settings(epochs=27, prune_min_epochs=1, prune_reduction_factor=3, prune_brackets=2)
    made = {name: pruners.make_pruner(settings.replace(prune=name)) for name in config.PRUNE_METHODS}
    assert made["none"].decide(0, [0.0], [finished(1, 1.0)] * 5).prune is False
    assert made["asha"].rungs == [1, 3, 9] and made["hyperband"].n_brackets == 2
    assert made["median"].warmup_trials == 4 and made["asha"].warmup_trials == 0  # 'auto'


@pytest.mark.parametrize("flag, value", [("prune_reduction_factor", 1), ("prune_min_epochs", 0),
                                         ("prune_warmup_trials", -1), ("prune", "wilcoxon")])
def test_bad_pruning_settings_are_refused_with_one_line(flag, value):
    with pytest.raises(ConfigError, match=flag.replace("_", "-")):
        config.resolve({flag: str(value)}, environ={})


@pytest.mark.parametrize("values, message", [
    ({"prune": "median", "prune_pause": "true"}, "--prune-pause pauses ASHA's trials: use it with --prune asha"),
    ({"prune": "asha", "prune_pause": "true", "checkpoint_every": "0"}, "set --checkpoint-every 1"),
])
def test_pauses_need_asha_and_checkpoints(values, message):
    with pytest.raises(ConfigError, match=message):
        config.resolve(values, environ={})
    assert pruners.make_pruner(config.resolve({"prune": "asha", "prune_pause": "true"}, environ={})).pause


def test_curves_from_jobs_reads_running_metrics_and_done_results():
    jobs = [
        Job("e", 0, DONE, result={"status": "ok", "history": {"val_fine_accuracy": [0.2, 0.3]}}),
        Job("e", 1, DONE, result={"status": "pruned", "history": {"val_fine_accuracy": [0.1]}}),
        Job("e", 2, RUNNING, metrics=[{"epoch": 1, "val_fine_accuracy": 0.25}]),
        Job("e", 3, FAILED, result={"status": "fail", "loss": None}),
        Job("e", 4, NEW),
    ]
    assert pruners.curves_from_jobs(jobs) == [Curve(0, "finished", (0.2, 0.3)), Curve(1, "pruned", (0.1,)),
                                              Curve(2, "running", (0.25,)), Curve(3, "failed", ())]


def pruned_result(at, best):
    return {"status": "pruned", "pruned": True, "pruned_at_epoch": at, "fine_best_accuracy": best, "loss": -best}


def test_sampler_loss_ranks_pruned_trials_below_longer_ones_or_by_their_best():
    ranked = Settings(epochs=9)
    early_good, late_bad = pruned_result(1, 0.6), pruned_result(3, 0.2)
    losses = [pruners.sampler_result(r, ranked)["loss"] for r in (early_good, late_bad)]
    assert losses[0] > losses[1] > 0  # above every completed trial, whose loss is -accuracy <= 0
    view = pruners.sampler_result(early_good, ranked)
    assert view["status"] == "ok" and view["pruned"] is True and early_good["status"] == "pruned"
    assert pruners.sampler_result(early_good, ranked.replace(prune_sampler_loss="best"))["loss"] == -0.6
    ok = {"status": "ok", "loss": -0.5}
    assert pruners.sampler_result(ok, ranked) is ok


def test_hyperopt_refuses_a_raw_pruned_status_and_takes_the_sampler_view():
    space = {"x": hp.uniform("x", 0, 1)}
    with pytest.raises(InvalidResultStatus):
        fmin(lambda p: pruned_result(1, p["x"]), space, algo=rand.suggest, max_evals=1, trials=Trials(),
             show_progressbar=False)
    trials = Trials()
    fmin(lambda p: pruners.sampler_result(pruned_result(1, p["x"]), Settings(epochs=3)), space,
         algo=rand.suggest, max_evals=3, trials=trials, show_progressbar=False)
    assert trials.statuses() == ["ok"] * 3 and all(r["pruned"] for r in trials.results)


def test_a_pruned_trial_never_becomes_the_best_result():
    best_view = pruners.sampler_result(pruned_result(2, 0.9), Settings(epochs=9, prune_sampler_loss="best"))
    completed = {"status": "ok", "loss": -0.5}
    assert res.best_result([best_view, completed, pruned_result(1, 0.95)]) is completed


def test_warmup_auto_is_four_trials_for_the_median_and_none_for_halving_and_a_count_overrides_it():
    from hks.config import resolve
    from hks.pruners import make_pruner

    def warmup(**settings):
        return make_pruner(resolve({"epochs": 9, **settings})).warmup_trials

    assert warmup(prune="median") == 4
    assert warmup(prune="asha") == 0 and warmup(prune="hyperband") == 0
    assert warmup(prune="asha", prune_warmup_trials="2") == 2


def test_asha_warns_when_fewer_than_eta_trials_would_run_to_the_end():
    thin = AshaPruner(27).budget_warning(30)  # rungs 1, 3, 9: one trial in 27 passes them all
    assert thin.startswith("--prune asha with rungs at 1, 3, 9 epochs lets about 1 trial in 27 run to the end, "
                           "1.1 of --max-evals 30") and "--max-evals 81 or more" in thin
    assert AshaPruner(27).budget_warning(81) is None and AshaPruner(9).budget_warning(30) is None
    assert AshaPruner(27, min_epochs=3).budget_warning(30) is None  # rungs 3, 9: one in 9, 27 or more trials
    assert AshaPruner(1).budget_warning(2) is None  # no rung: nothing is pruned
    assert MedianPruner(27).budget_warning(5) is None and HyperbandPruner(27).budget_warning(5) is None


def _reports_loss(point, should_prune):
    should_prune(0, {"loss": point["x"]})  # not the validation score pruning compares trials by
    return point["x"]


def _prunes_itself(point, tid):
    return {"status": "pruned", "loss": point["x"]} if tid % 2 else point["x"]  # no pruned_at_epoch


def test_a_custom_objective_prunes_with_one_clear_line_about_what_its_logs_lack_and_never_crashes(tmp_path):
    import hks

    space = {"x": hp.uniform("x", 0, 1)}
    common = {"storage": ":memory:", "results_dir": str(tmp_path / "r"), "plots": False, "algo": "rand"}
    with pytest.raises(ConfigError, match=r"should_prune\(epoch, logs\) needs logs\['val_fine_accuracy'\]"):
        hks.optimize(_reports_loss, space, max_evals=3, prune="median", **common)
    study = hks.optimize(_prunes_itself, space, max_evals=4, prune="median", **common)
    assert [r["status"] for r in study.results] == ["ok", "pruned", "ok", "pruned"]
