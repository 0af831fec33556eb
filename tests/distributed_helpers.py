"""Real master and worker processes for the distributed end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPACE = "tests.objectives_for_tests"
OBJECTIVE = "tests.objectives_for_tests:quadratic"


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3",
           "HKS_THREADS": "1"}
    for name in ("HKS_STORE", "MONGO_DB_HOST", "HKS_WORKERS", "EXPERIMENT_NAME"):
        out.pop(name, None)
    out.update(extra)
    return out


class Proc:
    """A child process whose output goes to a log file the test can read and show on failure."""

    def __init__(self, args: list[str], log: Path, **extra_env: str):
        self.log = log
        self.handle = open(log, "ab")
        self.popen = subprocess.Popen(args, cwd=REPO, env=env(**extra_env), stdout=self.handle,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.log.name} did not finish in {timeout}s:\n{self.text()[-3000:]}") from None

    def signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait()

    def close(self) -> None:
        self.kill()
        self.handle.close()


def master_args(url: str, exp_key: str, results: Path, max_evals: int, *extra: str) -> list[str]:
    return [sys.executable, "hyperopt_optimize.py", "--store", url, "--experiment-name", exp_key,
            "--space", SPACE, "--objective", OBJECTIVE, "--max-evals", str(max_evals), "--n-startup-trials", "3",
            "--results-dir", str(results), "--trials-file", str(results / "unused.pkl"), "--no-plots", *extra]


def worker_args(url: str, exp_key: str, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hks", "worker", "--store", url, "--exp-key", exp_key,
            "--results-dir", str(results), *extra]


def wait_until(predicate, timeout: float, what: str, procs: tuple[Proc, ...] = ()) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    logs = "\n".join(f"--- {p.log.name}\n{p.text()[-2000:]}" for p in procs)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs}")


def result_files(results: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(results.glob("*.txt.json"))]


def assert_each_trial_done_once(store, exp_key: str, results: Path, count: int) -> list:
    """Every trial of the budget done, each exactly once, each with one JSON result."""
    jobs = store.load(exp_key)
    assert [job.tid for job in jobs] == list(range(count)), [(j.tid, j.state, j.owner) for j in jobs]
    assert [job.state for job in jobs] == ["done"] * count, [(j.tid, j.state, j.error) for j in jobs]
    assert all(job.result["tid"] == job.tid and job.result["status"] == "ok" for job in jobs)
    files = sorted(r["tid"] for r in result_files(results))
    assert files == list(range(count)), f"one JSON result per trial expected, got tids {files}"
    return jobs
