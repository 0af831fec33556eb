"""``python -m hks report``: write the report page from results.pkl, a JSON folder or a store URL."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from hks import config
from hks.config import SEARCH_DATA_SETTINGS
from hks.errors import ConfigError
from hks.report.builder import DEFAULT_REFRESH_SECONDS, write_report
from hks.report.sources import default_source, load_snapshot, search_settings
from hks.store.urls import is_store_url

SHARED_SETTINGS = ("results_dir", "trials_file", "experiment_name", "plots", "dataset", "seed", "max_evals")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write results/report.html from a search's results",
        description="Write a self-contained HTML report (and its PNGs) of a search: which hyperparameters "
                    "matter, how the search progressed and which model won. Safe to run while a search runs.")
    parser.add_argument("--from", dest="source", metavar="PATH_OR_URL", default=None,
                        help="results.pkl, a folder of JSON results or a store URL "
                             "(default: --trials-file when it exists, else --results-dir)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder for report.html (default: the folder given to --from, else --results-dir)")
    parser.add_argument("--watch", type=float, default=None, metavar="SECONDS",
                        help="rewrite the report every SECONDS while the search runs (an open page reloads itself as "
                             "often); stops once the search is over, or at Ctrl-C")
    config.add_arguments(parser, names=SHARED_SETTINGS)
    parser.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    settings = config.resolve(args)
    if args.watch is not None and args.watch <= 0:
        raise ConfigError(f"--watch must be a positive number of seconds, got {args.watch}")
    watching = args.watch is not None
    if args.source and Path(args.source).is_dir():  # a results folder: its JSON files are linked, its page goes there
        settings = settings.replace(results_dir=args.source)
    elif args.source:  # a trials file or a store: the search's data settings, for the page's retrain hint
        saved = search_settings(args.source, settings)
        settings = config.resolve(args, fallback={name: saved.get(name) for name in SEARCH_DATA_SETTINGS})
        if not is_store_url(args.source):
            settings = settings.replace(trials_file=args.source)
            if not config.given(args, "results_dir"):  # the search's own folder, not ./results
                settings = settings.replace(results_dir=searched_results_dir(args.source, saved, settings))
    budget = settings.max_evals if config.given(args, "max_evals") else None  # for a folder, which records none
    said = False
    try:
        while True:
            source = args.source or default_source(settings)  # results.pkl may appear while watching
            if watching and budget is None and not said and Path(source).is_dir():
                said = True
                print(f"report: {source} is a folder of JSON results, which records no budget: watching until "
                      "Ctrl-C (pass --max-evals N to stop once it holds N trials)", flush=True)
            finished = _write_once(source, settings, args.out, watching, args.watch, budget)
            if not watching:
                return 0
            if finished:
                print("report: the search is over; the page no longer reloads itself", flush=True)
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:  # pages are replaced atomically: the last one written stays whole
        return 0


def searched_results_dir(trials_file: str, saved: dict, settings: config.Settings) -> str:
    """The results folder the search of ``trials_file`` wrote to (relative to that file's folder when it is
    there, as the search ran beside it), else ``--results-dir``. (A store's master saved its own folder, on
    its own machine: a report from a store writes to ``--results-dir``.)"""
    folder = saved.get("results_dir")
    if not folder:
        return settings.results_dir
    beside = Path(trials_file).parent / folder
    return str(beside) if not Path(folder).is_absolute() and beside.is_dir() else folder


def _write_once(source: str, settings: config.Settings, out: str | None, watching: bool,
                every: float | None, budget: int | None) -> bool:
    """Write the page once; True when the search it shows is over."""
    snapshot = load_snapshot(source, settings, watching=watching, budget=budget)
    outcome = write_report(snapshot, settings, out_dir=out, source=source,
                           refresh_seconds=every or DEFAULT_REFRESH_SECONDS)
    live = f", {len(snapshot.running)} running, {len(snapshot.queued)} queued" if snapshot.pending else ""
    print(f"report: {outcome.trials} trial(s), {outcome.succeeded} succeeded{live} -> {outcome.page}", flush=True)
    for problem in outcome.problems:
        print(f"note: {problem}", flush=True)
    return snapshot.finished
