"""Which hyperparameters matter: permutation importance of a random-forest surrogate.

A forest learns the search's metric from the hyperparameters of the successful trials; a
hyperparameter's importance is how much the forest's R² drops when that column is shuffled. It is
cheap, handles categorical hyperparameters (ordinal codes, ``None`` a category of its own) and
interactions, and says nothing causal: with few trials, read it as a hint.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hks.report.frame import SCORE, make_axis, param_name

if TYPE_CHECKING:
    from sklearn.ensemble import RandomForestRegressor

N_TREES = 100
N_REPEATS = 10
MIN_TRIALS = 4
MIN_TRIALS_FOR_OOB = 10
MAX_TRIALS = 1000  # a random sample beyond this: the forest's cost grows with the trials, the ranking barely

METHOD = (f"Permutation importance of a random-forest surrogate: a scikit-learn RandomForestRegressor "
          f"({N_TREES} trees) predicts the search's metric (validation fine accuracy, or a custom objective's "
          f"loss) from the hyperparameters of the successful "
          f"trials (categorical ones as ordinal codes, None as a category of its own); a hyperparameter's "
          f"importance is the mean drop of the forest's R\u00b2 when its column is shuffled ({N_REPEATS} repeats).")


@dataclass(frozen=True)
class Importance:
    method: str
    scores: tuple[tuple[str, float, float], ...]  # (hyperparameter, mean R² drop, std), most important first
    note: str


def feature_matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """The hyperparameters as numbers, with the same encoding the figures use."""
    return np.column_stack([make_axis(frame, c).positions for c in columns])


def compute_importance(frame: pd.DataFrame, columns: list[str], seed: int = 0) -> Importance:
    """Importance of each column for the successful trials of ``frame``; empty with a note when too few."""
    ok = frame[frame[SCORE].notna()].reset_index(drop=True) if not frame.empty else frame
    if len(ok) < MIN_TRIALS or not columns:
        why = f"only {len(ok)} successful trial(s)" if len(ok) < MIN_TRIALS else "no hyperparameter varied"
        return Importance(METHOD, (), f"Not computed: {why}; it needs at least {MIN_TRIALS} with varying "
                                      "hyperparameters.")
    from sklearn.ensemble import RandomForestRegressor

    sampled = len(ok) > MAX_TRIALS
    if sampled:
        ok = ok.sample(MAX_TRIALS, random_state=seed).reset_index(drop=True)
    x, y = feature_matrix(ok, columns), ok[SCORE].to_numpy(dtype=float)
    if np.ptp(y) == 0:
        return Importance(METHOD, (), "Not computed: every successful trial scored the same, so no "
                                      "hyperparameter explains it.")
    use_oob = len(ok) >= MIN_TRIALS_FOR_OOB
    forest = RandomForestRegressor(n_estimators=N_TREES, random_state=seed, oob_score=use_oob, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant targets and tiny samples warn; the note says so
        forest.fit(x, y)
    drops = permutation_drops(forest, x, y, N_REPEATS, seed)
    scores = sorted(((param_name(c), float(d.mean()), float(d.std())) for c, d in zip(columns, drops)),
                    key=lambda t: -t[1])
    note = _fit_note(forest, x, y, use_oob)
    if sampled:
        note += f" Fitted on a random sample of {MAX_TRIALS} of the successful trials, to keep the report fast."
    return Importance(METHOD, tuple(scores), note)


def permutation_drops(model: RandomForestRegressor, x: np.ndarray, y: np.ndarray, repeats: int,
                      seed: int) -> np.ndarray:
    """R² drop when each column is shuffled, ``repeats`` times: shape (columns, repeats).

    What ``sklearn.inspection.permutation_importance`` computes, but with every shuffled copy scored
    in ONE predict call: the forest's per-call overhead, not the rows, dominates its cost.
    """
    rng = np.random.default_rng(seed)
    copies = []
    for column in range(x.shape[1]):
        for _ in range(repeats):
            shuffled = x.copy()
            shuffled[:, column] = rng.permutation(shuffled[:, column])
            copies.append(shuffled)
    predicted = model.predict(np.vstack([x, *copies])).reshape(len(copies) + 1, len(y))
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - ((predicted - y) ** 2).sum(axis=1) / total
    return (r2[0] - r2[1:]).reshape(x.shape[1], repeats)


def _fit_note(forest: RandomForestRegressor, x: np.ndarray, y: np.ndarray, use_oob: bool) -> str:
    if use_oob:
        return (f"Surrogate fitted on {len(y)} trials; out-of-bag R\u00b2 {forest.oob_score_:.2f} "
                "(near or below 0: the importances are mostly noise).")
    return (f"Surrogate fitted on only {len(y)} trials (R\u00b2 measured on them: "
            f"{forest.score(x, y):.2f}); too few to validate it out of sample, treat the ranking as a hint.")
