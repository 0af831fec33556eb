"""A small search space for fast tests: the classic keys, a small fixed architecture, two free knobs."""

from hyperopt import hp

from hks.space import demo_point

SPACE = {
    **demo_point(),
    "conv_hiddn_units_mult": 0.2, "fc_units_1_mult": 0.05, "residual": None, "first_conv": None,
    "batch_size": 64, "use_BN": False,
    "lr_rate_mult": hp.loguniform("lr_rate_mult", -0.5, 0.5),
    "optimizer": hp.choice("optimizer", ["Adam", "RMSprop"]),
}
