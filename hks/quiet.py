"""Keep TensorFlow's start-up log and its retracing warnings off the console unless ``--verbose``.

TensorFlow prints its C++ start-up lines (absl's preamble, oneDNN, CPU features, CUDA factories)
while ``import tensorflow`` runs, twice, straight to file descriptor 2 and before
``TF_CPP_MIN_LOG_LEVEL`` is honoured; later, a multi-line "triggered tf.function retracing" warning
appears when trials of different shapes follow each other. Neither tells a user anything about the
search. So the first import of TensorFlow, wherever it happens lazily, runs with descriptor 2
captured, and what was not start-up noise is written back afterwards (errors still show); the
retracing warning is filtered from the ``tensorflow`` logger.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

RETRACING = "triggered tf.function retracing"
NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\)"
                   r"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\]"
                   r"|To enable the following instructions:)")


class _DropRetracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return RETRACING not in record.getMessage()


def without_noise(text: str) -> str:
    """``text`` less TensorFlow's informational start-up lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not NOISE.match(line))


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 (C++ writes there directly), then write back all but the noise."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = without_noise(capture.read().decode(errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """Runs the ``tensorflow`` package's import inside :func:`filtered_stderr`."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        module.__spec__.loader = self.loader
        with filtered_stderr():
            self.loader.exec_module(module)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if name != "tensorflow":
            return None
        uninstall_import_hook()  # once: find the real spec through the other finders
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


_FILTER = _DropRetracing()
_HOOK = _QuietTensorFlowImport()


def uninstall_import_hook() -> None:
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def quiet_tensorflow(verbose: bool) -> None:
    """Silence TensorFlow's noise (``verbose=False``) or let all of it through (``verbose=True``)."""
    logger = logging.getLogger("tensorflow")
    if verbose:
        logger.removeFilter(_FILTER)
        uninstall_import_hook()
        return
    logger.addFilter(_FILTER)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # later C++ INFO lines (worker processes inherit it)
    if "tensorflow" not in sys.modules and _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)
