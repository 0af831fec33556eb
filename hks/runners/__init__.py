"""Runners decide how trials run: in this process (:mod:`.in_process`), or on workers that a
master keeps supplied through the store (:mod:`.master`, with :mod:`hks.worker` on the other side).
"""
