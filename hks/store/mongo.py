"""The job store in MongoDB through pymongo 4 (the classic ``MONGO_DB_HOST`` setup).

Three collections in the URL's database (default ``hks``): ``experiments`` (``_id`` = exp key),
``jobs`` (``_id`` = ``exp_key/tid``) and ``workers``. Reservation is one
``find_one_and_update`` on the oldest ``new`` job, which MongoDB applies atomically.
"""

from __future__ import annotations

import time
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from hks.results import to_jsonable
from hks.store import protocol as p

_JOB_FIELDS = tuple(p.Job.__dataclass_fields__)


def _job(doc: dict[str, Any]) -> p.Job:
    return p.Job(**{k: doc[k] for k in _JOB_FIELDS if k in doc})


def _fence(job: p.Job) -> dict[str, Any]:
    return {"_id": _job_id(job.exp_key, job.tid), "state": p.RUNNING, "owner": job.owner,
            "reservation": job.reservation}


def _job_id(exp_key: str, tid: int) -> str:
    return f"{exp_key}/{tid}"


class MongoStore(p.JobStore):
    """A :class:`~hks.store.protocol.JobStore` over a pymongo (or mongomock) client."""

    def __init__(self, client: Any, db_name: str, url: str):
        self.client = client
        self.url = url
        db = client[db_name]
        self.experiments = db["experiments"]
        self.jobs = db["jobs"]
        self.workers = db["workers"]
        self.jobs.create_index([("exp_key", ASCENDING), ("state", ASCENDING), ("tid", ASCENDING)])
        self.workers.create_index([("exp_key", ASCENDING), ("last_seen", ASCENDING)])

    def close(self) -> None:
        self.client.close()

    # --- experiments -------------------------------------------------------------------
    def get_experiment(self, exp_key: str) -> p.Experiment | None:
        doc = self.experiments.find_one({"_id": exp_key})
        if doc is None:
            return None
        doc.pop("_id")
        return p.Experiment(**doc)

    def experiment_keys(self) -> list[str]:
        return [doc["_id"] for doc in self.experiments.find({}, {"_id": 1}).sort("created_at", 1)]

    def put_experiment(self, experiment: p.Experiment) -> None:
        values = to_jsonable(dict(experiment.__dict__))
        created = values.pop("created_at")
        self.experiments.update_one({"_id": experiment.exp_key},
                                    {"$set": values, "$setOnInsert": {"created_at": created}}, upsert=True)

    def finish_experiment(self, exp_key: str, now: float | None = None) -> None:
        self.experiments.update_one({"_id": exp_key}, {"$set": {"finished_at": time.time() if now is None else now}})

    # --- the master's side -------------------------------------------------------------
    def insert_jobs(self, new_jobs: list[p.Job]) -> None:
        if new_jobs:
            self.jobs.insert_many([{"_id": _job_id(j.exp_key, j.tid), **to_jsonable(j.__dict__)} for j in new_jobs])

    def versions(self, exp_key: str, watch: p.Watch | None = None) -> dict[int, int]:
        query: dict[str, Any] = {"exp_key": exp_key}
        if watch is not None:
            query["$or"] = [{"tid": {"$in": list(watch.tids)}}, {"state": {"$in": [p.NEW, p.RUNNING]}},
                            {"tid": {"$gt": watch.after}}]
        return {d["tid"]: d["version"] for d in self.jobs.find(query, {"tid": 1, "version": 1})}

    def load(self, exp_key: str, tids: list[int] | None = None) -> list[p.Job]:
        query: dict[str, Any] = {"exp_key": exp_key}
        if tids is not None:
            query["tid"] = {"$in": list(tids)}
        return [_job(d) for d in self.jobs.find(query).sort("tid", ASCENDING)]

    def count(self, exp_key: str, states: tuple[str, ...] = p.STATES) -> int:
        return self.jobs.count_documents({"exp_key": exp_key, "state": {"$in": list(states)}})

    # --- the workers' side -------------------------------------------------------------
    def reserve(self, exp_key: str, owner: str, lease_seconds: float) -> p.Job | None:
        now = time.time()
        doc = self.jobs.find_one_and_update(
            {"exp_key": exp_key, "state": p.NEW},
            {"$set": {"state": p.RUNNING, "owner": owner, "lease_expires": now + lease_seconds,
                      "heartbeat_at": now, "book_time": now},
             "$inc": {"attempts": 1, "version": 1, "reservation": 1}},
            sort=[("tid", ASCENDING)], return_document=ReturnDocument.AFTER)
        return _job(doc) if doc is not None else None

    def _fenced(self, job: p.Job, update: dict[str, Any]) -> bool:
        return self.jobs.update_one(_fence(job), update).matched_count == 1

    def heartbeat(self, job: p.Job, lease_seconds: float) -> bool:
        now = time.time()
        return self._fenced(job, {"$set": {"lease_expires": now + lease_seconds, "heartbeat_at": now}})

    def push_metrics(self, job: p.Job, metrics: list[dict[str, Any]]) -> bool:
        return self._fenced(job, {"$set": {"metrics": to_jsonable(metrics)}})

    def complete(self, job: p.Job, result: dict[str, Any]) -> bool:
        changes = {"state": p.DONE, "result": to_jsonable(result), "finished_at": time.time(), "lease_expires": None}
        return self._fenced(job, {"$set": changes, "$inc": {"version": 1}})

    def release(self, job: p.Job) -> bool:
        return self._fenced(job, {"$set": p.release_changes(), "$inc": {"version": 1, "attempts": -1}})

    def reopen(self, job: p.Job) -> bool:
        fence = {"_id": _job_id(job.exp_key, job.tid), "state": p.DONE, "version": job.version}
        changes = to_jsonable(p.reopen_changes(job))
        return self.jobs.update_one(fence, {"$set": changes, "$inc": {"version": 1}}).matched_count == 1

    def requeue_expired(self, exp_key: str, max_attempts: int, now: float | None = None) -> list[p.Job]:
        now = time.time() if now is None else now
        changed = []
        for doc in list(self.jobs.find({"exp_key": exp_key, "state": p.RUNNING, "lease_expires": {"$lt": now}})):
            job = _job(doc)
            changes = to_jsonable(p.expiry_changes(job, now, max_attempts))
            fence = {**_fence(job), "lease_expires": {"$lt": now}}
            if self.jobs.update_one(fence, {"$set": changes, "$inc": {"version": 1}}).modified_count == 1:
                changed.append(job)
        return changed

    # --- worker presence ---------------------------------------------------------------
    def touch_worker(self, info: p.WorkerInfo) -> None:
        self.workers.replace_one({"_id": info.worker_id}, dict(info.__dict__), upsert=True)

    def remove_worker(self, worker_id: str) -> None:
        self.workers.delete_one({"_id": worker_id})

    def live_workers(self, exp_key: str, since: float) -> list[p.WorkerInfo]:
        docs = self.workers.find({"exp_key": exp_key, "last_seen": {"$gte": since}})
        return [p.WorkerInfo(**{k: v for k, v in d.items() if k != "_id"}) for d in docs]

    def delete_experiment(self, exp_key: str) -> None:
        self.jobs.delete_many({"exp_key": exp_key})
        self.workers.delete_many({"exp_key": exp_key})
        self.experiments.delete_one({"_id": exp_key})
