"""``--workers N``: N worker processes on this machine, started and stopped by the master.

Each is ``python -m hks.worker`` over the master's store, with the cores shared out
(``--threads`` = cores / N unless set) so that the workers do not oversubscribe the machine.
Their output goes to ``<results_dir>/workers/worker-<i>.log``. They die with their master: the
kernel sends them SIGTERM when it dies (``PR_SET_PDEATHSIG`` on Linux), and each also watches its
parent's pid (``HKS_PARENT_PID``), so none outlives a SIGKILLed master. ``--workers auto`` starts
one worker per visible GPU, each pinned to its own (``--gpu``), or one CPU worker when no GPU is visible.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

from hks.config import Settings
from hks.errors import WorkerError
from hks.gpus import visible_gpus
from hks.stopping import die_with_parent
from hks.store import split_credentials
from hks.worker import PARENT_PID_ENV

STOP_SECONDS = 15


def worker_gpus(settings: Settings, count: int) -> list[str]:
    """The ``--gpu`` of each worker: its own GPU with ``--workers auto`` (-1 without any), else ``--gpu``."""
    if settings.workers != "auto":
        return [settings.gpu] * count
    gpus = visible_gpus()
    return gpus[:count] if gpus else ["-1"] * count


def threads_per_worker(settings: Settings, workers: int) -> int:
    if settings.threads > 0:
        return settings.threads
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def worker_command(settings: Settings, url: str, threads: int, gpu: str | None = None) -> list[str]:
    """The command line of one local worker: everything explicit, nothing inherited by accident."""
    command = [sys.executable, "-m", "hks.worker", "--store", url, "--experiment-name", settings.experiment_name,
               "--space", settings.space, "--objective", settings.objective, "--threads", str(threads),
               "--data-dir", settings.data_dir, "--results-dir", settings.results_dir,
               "--store-patience", str(settings.store_patience),
               "--download" if settings.download else "--no-download"]
    gpu = settings.gpu if gpu is None else gpu
    if gpu:
        command += ["--gpu", gpu]
    return command


def worker_env(credentials: dict[str, str]) -> dict[str, str]:
    """A local worker's environment: this process's, with its import path first, so that the workers run
    the very hks, objective and space this master imported (a checkout's script run from elsewhere
    would otherwise give them an installed hks, or none of the script folder's modules)."""
    path = [entry for entry in sys.path if entry and os.path.isdir(entry)]
    inherited = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HKS_WORKERS": "0", PARENT_PID_ENV: str(os.getpid()),
           "PYTHONPATH": os.pathsep.join(path + ([inherited] if inherited else [])), **credentials}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class LocalWorkers:
    """A context manager: the workers run while the master's ``fmin`` does, and stop with it."""

    def __init__(self, settings: Settings, url: str, count: int):
        self.settings, self.url, self.count = settings, url, count
        self.threads = threads_per_worker(settings, count)
        self.log_dir = Path(settings.results_dir) / "workers"
        self.processes: list[subprocess.Popen] = []
        self.reported: set[int] = set()

    def __enter__(self) -> LocalWorkers:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self.count <= 0:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        url, credentials = split_credentials(self.url)
        env = worker_env(credentials)
        gpus = worker_gpus(self.settings, self.count)
        if self.settings.workers == "auto":
            print("--workers auto: " + (f"one worker per GPU ({', '.join(gpus)})" if gpus[0] != "-1" else
                                        "no GPU visible, starting one CPU worker"), flush=True)
        orphaned = functools.partial(die_with_parent, signal.SIGTERM)  # a worker releases its trial on SIGTERM
        for index, gpu in enumerate(gpus):
            command = worker_command(self.settings, url, self.threads, gpu)
            with open(self.log_path(index), "ab") as log:
                self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                       stdin=subprocess.DEVNULL, preexec_fn=orphaned))
        workers = f"{self.count} local worker{'s' if self.count != 1 else ''}"
        print(f"started {workers} ({self.threads} threads each), logs in {self.log_dir}/", flush=True)

    def log_path(self, index: int) -> Path:
        return self.log_dir / f"worker-{index}.log"

    def check(self) -> None:
        """Report workers that died; raise when all did (nothing would ever finish the search)."""
        for index, process in enumerate(self.processes):
            code = process.poll()
            if code is not None and index not in self.reported:
                self.reported.add(index)
                print(f"local worker {index} exited with code {code}: {self._last_line(index)}", flush=True)
        if self.processes and len(self.reported) == len(self.processes):
            raise WorkerError(f"all {len(self.processes)} local workers exited; the last said: "
                              f"{self._last_line(len(self.processes) - 1)} (logs in {self.log_dir}/); "
                              "finished trials are kept in the store: fix the cause and run again to resume")

    def _last_line(self, index: int) -> str:
        try:
            lines = [line for line in self.log_path(index).read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "(no log)"
        return lines[-1].removeprefix("hks: error: ")[:300] if lines else "(empty log)"

    def stop(self) -> None:
        """SIGTERM (each releases its trial), then SIGKILL whatever is still there after a while."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
