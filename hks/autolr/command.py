"""``python -m hks autolr``: find the initial learning rate with autoHyper (see docs/autolr.md)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from hks import config

DATA_FLAGS = ("dataset", "data_dir", "download", "dataset_size", "val_fraction", "augment_crop", "threads",
              "seed", "results_dir")
# The command's short flags for the autolr_* settings (a search spells them --autolr-min-lr, ...).
SHORT_FLAGS = {"--min-lr": "autolr_min_lr", "--max-lr": "autolr_max_lr", "--num-lrs": "autolr_num_lrs",
               "--epochs-per-trial": "autolr_epochs", "--max-trials": "autolr_max_trials",
               "--optimizer": "autolr_optimizer", "--point": "autolr_point"}


def _add_short_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per autolr setting, its help, default and env var taken from the Settings field."""
    fields = {f.name: f for f in dataclasses.fields(config.Settings)}
    for flag, name in SHORT_FLAGS.items():
        f = fields[name]
        help_text = f"{f.metadata['help']} (default {f.default!r}, env {f.metadata['env']})"
        metavar = flag[2:].upper().replace("-", "_")
        parser.add_argument(flag, config.flag_name(name), dest=name, default=None, metavar=metavar, help=help_text)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "autolr", help="find the initial learning rate with autoHyper (writes lrrt.csv)",
        description="Scan learning rates on a geometric grid, training the fixed architecture a few epochs per "
                    "rate, and pick the smallest rate at which every conv layer gains knowledge (autoHyper).")
    config.add_arguments(parser, DATA_FLAGS)
    _add_short_flags(parser)
    parser.set_defaults(func=autolr_command)


def autolr_command(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from hks.autolr.calibrate import run_autolr

    tf.get_logger().setLevel("ERROR")  # every trial builds a new model: TF's retracing notes are expected
    settings = config.resolve(args)
    try:
        result = run_autolr(settings)
    except KeyboardInterrupt:
        print(f"\ninterrupted: measured learning rates are saved in {settings.results_dir}/autolr; "
              "run again to resume", file=sys.stderr)
        return 130
    print(f"{result.chosen_lr:.6g}")
    return 0
