"""autoHyper initial learning-rate search (Tuli, Hosseini & Plataniotis, 2021).

Modules: :mod:`~hks.autolr.evbmf` (low-rank noise removal), :mod:`~hks.autolr.knowledge_gain`
(AdaS knowledge gain and the response Z), :mod:`~hks.autolr.rules` (the scan's decision rules),
:mod:`~hks.autolr.trial` (one training at one learning rate), :mod:`~hks.autolr.calibrate` (the scan on
real training, its files, and :func:`calibrate_base_lr` for ``--base-lr auto``) and
:mod:`~hks.autolr.command` (``python -m hks autolr``).
"""
