"""``--precision`` and ``--jit``: the dtype policy a trial's model is built under, and XLA.

``mixed`` computes in float16 on GPUs with tensor cores before Ampere (Keras adds loss scaling),
in bfloat16 on Ampere and later GPUs (as fast, and no loss scaling to go wrong) and on CPUs
(where oneDNN uses AVX512-BF16/AMX when present; on older CPUs it runs, slower). Variables and the
softmax heads stay float32 (:func:`hks.heads.softmax_heads`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


@functools.cache
def mixed_policy() -> str:
    """The Keras mixed policy for this machine's first visible device (said once per process)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        policy, why = "mixed_bfloat16", "no GPU visible"
    else:
        major, minor = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        if major >= 8:
            policy, why = "mixed_bfloat16", f"GPU compute capability {major}.{minor}"
        elif major >= 7:
            policy, why = "mixed_float16", f"GPU compute capability {major}.{minor} (tensor cores)"
        else:
            policy, why = "float32", f"GPU compute capability {major}.{minor} has no tensor cores"
    print(f"--precision mixed: {policy} ({why})", flush=True)
    return policy


def policy_name(precision: str) -> str:
    return mixed_policy() if precision == "mixed" else "float32"


@contextlib.contextmanager
def dtype_policy(precision: str) -> Iterator[str]:
    """Build models under ``precision``'s policy; the process-wide default is restored afterwards."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name(precision))
    try:
        yield keras.config.dtype_policy().name
    finally:
        keras.config.set_dtype_policy(previous)


def apply_jit(model: keras.Model, jit: str) -> None:
    """``--jit on``/``off`` overrides Keras's own choice (``auto``: XLA on GPUs, not on CPUs)."""
    if jit != "auto":
        model.jit_compile = jit == "on"
