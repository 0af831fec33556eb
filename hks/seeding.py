"""Independent random streams per trial, derived from (search seed, trial id, purpose).

``seed + trial id`` made seed 43's trial k equal to seed 42's trial k+1, so repeated searches
were shifted copies of one another. :class:`numpy.random.SeedSequence` with a spawn key gives
each (seed, tid, purpose) its own stream, and the same inputs always give the same stream, so a
resumed search still makes exactly the suggestions an uninterrupted one makes.
"""

from __future__ import annotations

import numpy as np

SUGGEST = 0  # the sampler's draws for trial tid
TRAIN = 1  # the trial's own weight initialisation, shuffling and augmentation


def trial_seed(seed: int, tid: int, purpose: int = SUGGEST) -> int:
    """A 31-bit integer seed (what hyperopt, Keras and Ax accept) for one trial and purpose."""
    sequence = np.random.SeedSequence(entropy=int(seed) & 0xFFFFFFFFFFFFFFFF, spawn_key=(int(tid), purpose))
    return int(sequence.generate_state(1, dtype=np.uint32)[0] >> 1)


def trial_rng(seed: int, tid: int, purpose: int = SUGGEST) -> np.random.Generator:
    return np.random.default_rng(trial_seed(seed, tid, purpose))
