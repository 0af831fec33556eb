"""Resident memory of this process: now, and the peak while a trial runs.

The kernel's own peak (``ru_maxrss``) only ever grows over a process's life, so it cannot say
what one trial used; :class:`PeakRss` samples the current RSS on a background thread instead.
After a trial, :func:`release_memory` hands freed heap pages back to the system, so the RSS of
a long in-process search reflects what is still in use. That only works for memory TensorFlow
took from malloc: by default its oneDNN CPU kernels draw large buffers from a pool that stays at
its high-water mark for the life of the process (one large trial kept 2.2 GB after it ended), so
:func:`use_cpu_allocator` sends them to the system allocator where trials share a process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource
import sys
import threading

ONEDNN_SYSTEM_ALLOCATOR = "TF_ONEDNN_USE_SYSTEM_ALLOCATOR"  # read at TensorFlow's first CPU allocation
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Current resident set size in MiB (the lifetime peak where /proc is unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE / 2**20
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class PeakRss:
    """``peak_mb``: the highest RSS sampled between :meth:`start` and :meth:`stop` (or inside ``with``)."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.peak_mb = interval, rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="hks-peak-rss", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def start(self) -> PeakRss:
        self._thread.start()
        return self

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())
        return self.peak_mb

    def __enter__(self) -> PeakRss:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def release_memory() -> None:
    """Collect garbage, then return glibc's free heap pages to the system (malloc_trim; Linux only)."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def use_cpu_allocator(choice: str) -> None:
    """``system`` (and ``auto``, which a trial's own process turns into ``pool``: see
    :mod:`hks.trial_process`): TensorFlow's oneDNN kernels allocate with malloc, so freed memory goes
    back after each trial, for about 6 % more CPU time (page faults); ``pool``: TensorFlow's own pool.
    Takes effect only before TensorFlow first allocates."""
    os.environ[ONEDNN_SYSTEM_ALLOCATOR] = "0" if choice == "pool" else "1"
