"""Pictures of model architectures (Keras ``plot_model``, which needs Graphviz's ``dot``)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

GRAPHVIZ_MISSING = ("Graphviz is not installed, so no architecture picture was drawn: "
                    "install it (apt-get install graphviz, or brew install graphviz) and pydot")


def graphviz_available() -> bool:
    if shutil.which("dot") is None:
        return False
    try:
        import pydot  # noqa: F401
    except ImportError:
        return False
    return True


def plot_architecture(model: keras.Model, path: str | Path) -> str | None:
    """Draw ``model`` to ``path``; returns None on success, else a one-line reason (never raises)."""
    if not graphviz_available():
        return GRAPHVIZ_MISSING
    import keras

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        keras.utils.plot_model(model, to_file=str(path), show_shapes=True, show_layer_names=True, dpi=72)
    except Exception as exc:  # drawing is a nicety: it must never stop a search
        return f"could not draw {path.name}: {type(exc).__name__}: {exc}"
    return None


def plot_point(point: dict, path: str | Path, num_fine: int = 100, num_coarse: int | None = 20) -> str | None:
    """Build the model of a space point and draw it (see :func:`plot_architecture`)."""
    import keras

    from hks.model import build_model

    if not graphviz_available():
        return GRAPHVIZ_MISSING
    try:
        model = build_model(point, num_fine, num_coarse)
    except Exception as exc:
        return f"could not build the model to draw {Path(path).name}: {exc}"
    try:
        return plot_architecture(model, path)
    finally:
        del model
        keras.backend.clear_session()


def _heads(dataset: str) -> tuple[int, int | None]:
    from hks.data import spec_for

    spec = spec_for(dataset)
    return spec.num_fine, spec.num_coarse


def draw_demo(results_dir: str, dataset: str) -> str | None:
    """``model_demo.png``: the classic sample's ``space_base_demo_to_plot`` point (once per results folder)."""
    from hks.space import classic_demo_point

    path = Path(results_dir) / "model_demo.png"
    return None if path.exists() else plot_point(classic_demo_point(), path, *_heads(dataset))


def draw_best(results_dir: str, dataset: str, point: dict) -> str | None:
    """``model_best.png``, the architecture of the best trial so far."""
    return plot_point(point, Path(results_dir) / "model_best.png", *_heads(dataset))
