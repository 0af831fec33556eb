"""--cpu-allocator: with ``system`` (what ``auto`` means where trials share a process) the memory of
TensorFlow's CPU kernels goes back to the system once freed, so trials sharing a process do not keep
the largest one's buffers;
``pool`` is TensorFlow's own allocator, which keeps them. Each case runs in a fresh process,
since the choice only counts before TensorFlow's first allocation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hks.config import resolve
from hks.errors import ConfigError
from hks.memory import ONEDNN_SYSTEM_ALLOCATOR
from hks.trial_process import child_settings

ROOT = Path(__file__).resolve().parents[1]

# A convolution whose output alone is 128 MiB; prints RSS (MiB) before, at the peak and after it is freed.
LARGE_CONVOLUTION = """
import sys
from hks.config import Settings
from hks.objective import configure_tensorflow
configure_tensorflow(Settings(cpu_allocator=sys.argv[1], threads=1))
import tensorflow as tf
from hks.memory import release_memory, rss_mb
before = rss_mb()
x = tf.random.normal((32, 64, 64, 64))
y = tf.nn.conv2d(x, tf.random.normal((3, 3, 64, 256)), 1, "SAME")
peak = rss_mb()
del x, y
release_memory()
print(before, peak, rss_mb())
"""


def _rss_around_a_large_convolution(allocator: str) -> tuple[float, float, float]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(ONEDNN_SYSTEM_ALLOCATOR, None)
    out = subprocess.run([sys.executable, "-c", LARGE_CONVOLUTION, allocator], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    before, peak, after = map(float, out.split()[-3:])
    return before, peak, after


def test_the_system_allocator_hands_a_large_convolutions_memory_back_and_the_pool_keeps_it():
    for allocator in ("system", "auto"):  # auto, where trials share a process, is the system allocator
        before, peak, after = _rss_around_a_large_convolution(allocator)
        assert peak - before > 120, allocator  # the output was really allocated
        assert after - before < 40, allocator
    before, peak, after = _rss_around_a_large_convolution("pool")
    assert peak - before > 120
    assert after - before > 120  # TensorFlow's pool keeps its high-water mark


def test_auto_is_the_default_and_a_trials_own_process_uses_the_faster_pool():
    settings = resolve({})
    assert settings.cpu_allocator == "auto"
    assert child_settings(settings).cpu_allocator == "pool"  # its memory goes back when it exits anyway
    assert child_settings(settings.replace(cpu_allocator="system")).cpu_allocator == "system"
    with pytest.raises(ConfigError, match="cpu.allocator"):
        resolve({"cpu_allocator": "jemalloc"})
