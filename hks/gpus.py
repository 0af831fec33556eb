"""The GPUs this machine shows, found without importing TensorFlow (the master never trains), and how
many local workers ``--workers`` asks for: a count, or ``auto`` = one per visible GPU."""

from __future__ import annotations

import os
import shutil
import subprocess

from hks.config import Settings
from hks.errors import ConfigError


def visible_gpus() -> list[str]:
    """Ids of the GPUs this process may use, without importing TensorFlow (the master never trains).

    ``CUDA_VISIBLE_DEVICES`` decides when set (empty or -1: none); otherwise ``nvidia-smi -L``.
    """
    pinned = os.environ.get("CUDA_VISIBLE_DEVICES")
    if pinned is not None:
        ids = [gpu.strip() for gpu in pinned.split(",") if gpu.strip()]
        return [] if not ids or ids[0].startswith("-") else ids
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))]


def worker_count(settings: Settings) -> int:
    """How many local workers ``--workers`` asks for: the number, or 'auto' = one per visible GPU (at least 1)."""
    workers = settings.workers
    if workers == "auto":
        return max(1, len(visible_gpus()))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ConfigError(f"--workers={workers!r} must be a count >= 0 or 'auto'")
    return workers
