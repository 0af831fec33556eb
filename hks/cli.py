"""``python -m hks <command>``: one entry point, one sub-command per feature.

Each command lives in its own module and is listed in :data:`COMMANDS` as
``"module:register"``; ``register(subparsers)`` adds the command's parser and sets ``func``.
Errors the user can fix (:class:`hks.errors.HksError`) are printed as one line, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from hks import config
from hks.errors import HksError
from hks.quiet import quiet_tensorflow

COMMANDS: dict[str, str] = {
    "search": "hks.cli:register_search",
    "settings": "hks.cli:register_settings",
    "report": "hks.report.command:register",
    "retrain-best": "hks.retrain:register_retrain",
    "evaluate": "hks.retrain:register_evaluate",
    "autolr": "hks.autolr.command:register",
    "worker": "hks.worker:register",
}


def register_search(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="run or resume a search (what hyperopt_optimize.py does)",
                                   description="Run or resume a hyperparameter and architecture search.")
    config.add_arguments(parser)
    parser.set_defaults(func=search_command)


def search_command(args: argparse.Namespace) -> int:
    from hks.study import run_search

    settings = config.resolve(args)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        run_search(settings)
    except KeyboardInterrupt as exc:
        signum = _signal_number(exc)
        how = "terminated (SIGTERM)" if signum == signal.SIGTERM else "interrupted"
        print(f"\n{how}: every finished trial is saved; run the same command again to resume", file=sys.stderr)
        return 128 + (signum or signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _terminate(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM ends a search as Ctrl-C does (also while it starts): the rest is saved, and said so."""
    raise KeyboardInterrupt(f"signal {signum}")


def _signal_number(exc: KeyboardInterrupt) -> int | None:
    """The signal a KeyboardInterrupt stands for (``signal 15``, as raised by hks's SIGTERM handlers)."""
    text = str(exc)
    return int(text.split()[1]) if text.startswith("signal ") and text.split()[1].isdigit() else None


def register_settings(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("settings", help="list every setting: flag, environment variable, default")
    parser.add_argument("--resolved", action="store_true", help="show the values in force here instead")
    parser.set_defaults(func=settings_command)


def settings_command(args: argparse.Namespace) -> int:
    if args.resolved:
        from hks.store.urls import mask_url

        for name, value in config.resolve({}).to_dict().items():
            print(f"{name} = {mask_url(value) if name == 'store' else value!r}")  # a URL's password: never shown
    else:
        print(config.markdown_table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hks", description="hyperopt Keras search (hks)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for target in COMMANDS.values():
        module_name, function_name = target.split(":")
        getattr(importlib.import_module(module_name), function_name)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        quiet_tensorflow(config.resolve({"verbose": getattr(args, "verbose", None)}).verbose)
        return int(args.func(args) or 0)
    except HksError as exc:
        print(f"hks: error: {exc}", file=sys.stderr)
        return 2
