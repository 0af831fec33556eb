"""Trial records as hyperopt sees them: the bridge between the store and hyperopt's ``Trials``.

``results.pkl`` stays a hyperopt ``Trials`` that ``pickle.load`` opens (as the classic sample's
users expect), and hyperopt's algorithms read a ``Trials``; both are built from store records here.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from hyperopt import base

from hks import results as res
from hks.store import protocol as p

HYPEROPT_STATE = {p.NEW: base.JOB_STATE_NEW, p.RUNNING: base.JOB_STATE_RUNNING,
                  p.DONE: base.JOB_STATE_DONE, p.FAILED: base.JOB_STATE_DONE}
# The hyperopt trial fields that describe the job itself, not its progress: what the store keeps in ``doc``.
DOC_FIELDS = ("spec", "misc")


def as_datetime(unix: float | None) -> datetime.datetime | None:
    """hyperopt's timestamps: naive UTC datetimes."""
    return None if unix is None else datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).replace(tzinfo=None)


def hyperopt_trial(job: p.Job, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """The job as a hyperopt trial document; a job failed by the store is ``done`` with a failed result.

    ``result`` overrides the job's own (the constant liar gives pending trials a made-up loss).
    """
    if result is None:
        result = job.result if job.state in p.FINAL_STATES and job.result else {"status": base.STATUS_NEW}
    return {
        "state": base.JOB_STATE_DONE if result.get("status") != base.STATUS_NEW else HYPEROPT_STATE[job.state],
        "tid": job.tid, "exp_key": job.exp_key, "owner": job.owner, "version": job.version,
        "spec": job.doc.get("spec"), "misc": job.doc.get("misc", {}), "result": result,
        "book_time": as_datetime(job.book_time), "refresh_time": as_datetime(job.finished_at or job.heartbeat_at),
    }


def trials_from_docs(docs: Iterable[dict[str, Any]], exp_key: str | None = None) -> base.Trials:
    """An in-memory hyperopt ``Trials`` holding these documents (no validation pass: they are ours)."""
    trials = base.Trials(exp_key=exp_key, refresh=False)
    trials._dynamic_trials = list(docs)
    trials.refresh()
    return trials


def job_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """What the store keeps of a suggestion hyperopt made: its spec and its assignment (``misc``),
    as plain JSON types (numpy integers would differ between backends)."""
    return res.to_jsonable({key: doc.get(key) for key in DOC_FIELDS})


def finished_result(job: p.Job, space: Any = None) -> dict[str, Any]:
    """A finished job's result, complete enough for reports even when its worker was lost."""
    from hyperopt import space_eval

    result = dict(job.result or {"status": res.STATUS_FAIL, "loss": None, "error": job.error})
    result["tid"] = job.tid
    if result.get("space") is None and space is not None:
        result["space"] = space_eval(space, job.vals())
    if not result.get("model_name"):
        result["model_name"] = res.make_model_name(None)
    return result
