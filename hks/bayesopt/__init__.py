"""Gaussian-process Bayesian optimisation through Ax (``--algo gp``, the optional ``bo`` extra).

Flat spaces (:class:`Float`, :class:`Int`, :class:`Choice`) are plain data and need no Ax;
Ax is imported only when a GP search starts, with a one-line error naming the extra if absent.
"""

from hks.bayesopt.flat import Choice, Float, Int

__all__ = ["Choice", "Float", "Int"]
