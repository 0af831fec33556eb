"""A flat space (what --algo gp models) for the GP-with-workers test."""

from hks.bayesopt import Choice, Float

SPACE = {"x": Float(-1.0, 1.0), "kind": Choice(("a", "b"))}
