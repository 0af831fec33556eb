"""Settings: one declaration gives the default, the environment variable and the CLI flag."""

import argparse

import pytest

from hks import config
from hks.errors import ConfigError


def _parse(argv):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_when_nothing_is_set():
    settings = config.resolve(_parse([]), environ={})
    assert settings == config.Settings()
    assert settings.algo == "mtpe" and settings.n_startup_trials == "auto" and settings.trials_file == "results.pkl"


def test_classic_environment_variables_are_read():
    env = {"HKS_MAX_EVALS": "7", "HKS_EPOCHS": "3", "EXPERIMENT_NAME": "mine", "HKS_DOWNLOAD": "no"}
    settings = config.resolve(_parse([]), environ=env)
    assert (settings.max_evals, settings.epochs, settings.experiment_name, settings.download) == (7, 3, "mine", False)


def test_cli_flag_beats_environment():
    settings = config.resolve(_parse(["--max-evals", "9", "--download"]),
                              environ={"HKS_MAX_EVALS": "7", "HKS_DOWNLOAD": "0"})
    assert settings.max_evals == 9 and settings.download is True


@pytest.mark.parametrize("argv, env, fragment", [
    (["--algo", "nope"], {}, "--algo='nope' is not one of tpe"),
    ([], {"HKS_EPOCHS": "ten"}, "HKS_EPOCHS='ten' is not a valid int"),
    (["--val-fraction", "1.5"], {}, "--val-fraction must be between 0 and 1"),
    ([], {"HKS_DATASET": "mnist"}, "HKS_DATASET='mnist' is not one of cifar100, cifar10"),
    ([], {"HKS_MAX_EVALS": "-3"}, "HKS_MAX_EVALS must be >= 0, got -3"),  # names what set it: the variable
    (["--max-evals", "-3"], {"HKS_MAX_EVALS": "5"}, "--max-evals must be >= 0, got -3"),
    (["--threads", "-1"], {}, "--threads must be >= 0 (0: TensorFlow decides), got -1"),
    (["--patience", "-3"], {}, "--patience must be >= 0, got -3"),
    (["--lease-seconds", "nan"], {}, "--lease-seconds must be a number of seconds, got nan"),
    (["--gpu", "abc"], {}, "--gpu must be a GPU id such as 0"),
    ([], {"MONGO_DB_PORT": "-5"}, "MONGO_DB_PORT must be >= 1, got -5"),
    (["--mongo-db-port", "70000"], {}, "--mongo-db-port must be a port number up to 65535"),
    ([], {"HKS_BASE_LR": "-1"}, "HKS_BASE_LR='-1' must be a positive number"),
])
def test_bad_values_give_one_clear_line(argv, env, fragment):
    with pytest.raises(ConfigError) as err:
        config.resolve(_parse(argv), environ=env)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_settings_round_trip_through_dict_ignores_unknown_keys():
    settings = config.Settings(epochs=4, dataset="cifar10")
    assert config.Settings.from_dict({**settings.to_dict(), "from_a_newer_version": 1}) == settings


def test_settings_resolved_shows_the_values_in_force_but_never_a_store_password(monkeypatch, capsys):
    from hks.cli import main

    monkeypatch.setenv("HKS_STORE", "mongodb://u:topsecret@h/x")
    monkeypatch.setenv("HKS_MAX_EVALS", "7")
    assert main(["settings", "--resolved"]) == 0
    out = capsys.readouterr().out
    assert "store = 'mongodb://u:***@h/x'" in out and "topsecret" not in out and "max_evals = 7" in out


@pytest.mark.parametrize("gpu", ["", "0", "0,1", "0, 1", "0,1,", "-1", "GPU-8a3b1c2d-0e1f-4a5b-9c8d-7e6f5a4b3c2d",
                                 "MIG-GPU-8a3b1c2d-0e1f-4a5b-9c8d-7e6f5a4b3c2d/1/0", "MIG-4f3e2d1c-aaaa-bbbb"])
def test_every_gpu_id_cuda_takes_is_accepted(gpu):
    assert config.resolve({"gpu": gpu}, environ={}).gpu == gpu
