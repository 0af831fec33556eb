"""The classic flat space of ``--algo gp``: SGD's learning rate, momentum and weight decay.

A user's own flat space is a module (or ``.py`` file) like this one, passed as ``--gp-space``.
Keys of :data:`hks.space.SPACE` (``batch_size``, ``fc_dropout_drop_proba``, ...) override the
fixed architecture; other keys are keyword arguments of the Keras optimizer.
"""

from hks.bayesopt.flat import Float

SPACE = {
    "learning_rate": Float(1e-4, 1.0, log=True),
    "momentum": Float(0.0, 1.0),
    "weight_decay": Float(1e-6, 1e-4, log=True),
}
