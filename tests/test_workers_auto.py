"""``--workers auto``: one worker per visible GPU, each pinned to its own; one CPU worker without GPUs."""

import sys

import pytest

from hks.config import resolve
from hks.errors import ConfigError
from hks.gpus import visible_gpus, worker_count
from hks.local_workers import LocalWorkers, worker_gpus
from hks.store import check_settings, store_url


def test_auto_parses_from_flag_and_environment_and_bad_values_say_what_to_use():
    assert resolve({"workers": "auto"}, {}).workers == "auto"
    assert resolve({}, {"HKS_WORKERS": "AUTO"}).workers == "auto"
    assert resolve({}, {"HKS_WORKERS": "3"}).workers == 3
    for bad in ("two", "-1", "1.5"):
        with pytest.raises(ConfigError, match="--workers=.* is not a valid value: .*'auto'"):
            resolve({"workers": bad}, {})


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert visible_gpus() == ["2", "5"]
    for none in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", none)
        assert visible_gpus() == []


def test_auto_counts_one_worker_per_gpu_each_pinned_to_its_own(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,3")
    settings = resolve({"workers": "auto", "results_dir": "out"}, {})
    assert worker_count(settings) == 3
    assert worker_gpus(settings, 3) == ["0", "1", "3"]
    assert store_url(settings) == "sqlite:///out/store.sqlite3"
    numbered = resolve({"workers": "2", "gpu": "1"}, {})
    assert worker_count(numbered) == 2 and worker_gpus(numbered, 2) == ["1", "1"]
    assert worker_count(resolve({}, {})) == 0 and store_url(resolve({}, {})) == ""


def test_a_negative_count_set_in_python_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="--workers=-2 must be a count >= 0 or 'auto'"):
        check_settings(resolve({}, {}).replace(workers=-2))


def test_auto_without_gpus_starts_one_cpu_worker_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    settings = resolve({"workers": "auto", "results_dir": str(tmp_path), "idle_timeout": "1"}, {})
    count = worker_count(settings)
    assert count == 1
    workers = LocalWorkers(settings, store_url(settings), count)
    with workers:
        assert len(workers.processes) == 1
        command = workers.processes[0].args
        assert command[:3] == [sys.executable, "-m", "hks.worker"]
        assert command[command.index("--gpu") + 1] == "-1"
    assert "--workers auto: no GPU visible, starting one CPU worker" in capsys.readouterr().out
