"""Run one measurement in a fresh Python process, so that none inherits another's caches or memory."""

from __future__ import annotations

import multiprocessing as mp
import queue as queues
from collections.abc import Callable
from typing import Any

POLL_SECONDS = 1.0


def run_fresh(target: Callable[..., None], *args: Any) -> Any:
    """Call ``target(*args, queue)`` in a spawned process and return what it put on the queue; a process
    that ends without putting anything (an exception, a kill) raises instead of leaving the caller waiting."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, queue))
    process.start()
    while True:
        ended = not process.is_alive()  # looked at before the wait: what it put before ending is still read
        try:
            outcome = queue.get(timeout=POLL_SECONDS)
            break
        except queues.Empty:
            if ended:
                raise RuntimeError(f"the measurement's process ended (exit code {process.exitcode}) "
                                   "without a result: its error is printed above") from None
    process.join()
    return outcome
