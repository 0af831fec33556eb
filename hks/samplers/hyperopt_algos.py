"""hyperopt's algorithms (tpe, rand, anneal, atpe) as samplers over storage records.

Each suggestion builds a hyperopt ``Trials`` from the records and calls the algorithm for one
trial id with that id's own seed. Two things differ from calling ``fmin``:

* **Start-up counts finished trials only.** hyperopt's TPE counts queued and running trials
  toward ``n_startup_jobs``, so with 20 workers its 21st suggestion "modelled" zero results.
  Here the first ``--n-startup-trials`` *scored* trials are random; TPE models after that.
* **Pending trials get a constant lie.** A queued or running trial (and each earlier point of
  the same batch) is shown to the algorithm as finished with the worst loss seen so far
  ("constant liar", Ginsbourger et al. 2010, pessimistic variant): the algorithm steers away
  from points already being evaluated, so workers asking at once get different points.
  mtpe, which reads the lie as "pending", sees pending trials before any trial has a loss too,
  so the first batch of a search with many workers is spread out and has no repeats.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import Any

from hyperopt import base, rand

from hks.errors import ConfigError
from hks.samplers.base import Sampler, finite_loss, pending
from hks.seeding import trial_seed
from hks.store import protocol as p
from hks.store.hyperopt_docs import as_datetime, job_doc, trials_from_docs

Suggest = Callable[..., list[dict[str, Any]]]

NEVER = datetime.datetime(1970, 1, 1)  # a trial never booked (queued by a batch, or a lie)


def hyperopt_algorithm(name: str) -> Suggest:
    """The hyperopt ``suggest`` function of an algorithm name."""
    from hyperopt import anneal, tpe

    if name == "tpe":
        return functools.partial(tpe.suggest, n_startup_jobs=0)  # start-up is decided here, on finished trials
    if name == "rand":
        return rand.suggest
    if name == "mtpe":
        from hks.samplers import mtpe

        return mtpe.suggest
    if name == "anneal":
        return anneal.suggest
    if name == "atpe":
        try:
            import lightgbm  # noqa: F401  (ATPE's own dependency, checked now rather than mid-search)
        except ImportError:
            raise ConfigError("--algo atpe needs lightgbm: pip install lightgbm") from None
        from hyperopt import atpe

        return atpe.suggest
    raise ConfigError(f"unknown hyperopt algorithm {name!r}")


class HyperoptSampler(Sampler):
    def __init__(self, name: str, space: Any, seed: int, n_startup: int = 0, algorithm: Suggest | None = None):
        self.name, self.seed, self.n_startup = name, seed, n_startup
        self.algorithm = algorithm or hyperopt_algorithm(name)
        self.domain = base.Domain(lambda _: None, space)
        self.docs = DocCache()

    def suggest(self, history: list[p.Job], tids: list[int]) -> list[dict[str, Any]]:
        batch: list[p.Job] = []
        for tid in tids:
            doc = self._suggest_one(history + batch, tid)
            batch.append(p.Job(exp_key="", tid=tid, doc=doc))
        return [job.doc for job in batch]

    def _suggest_one(self, history: list[p.Job], tid: int) -> dict[str, Any]:
        seed = trial_seed(self.seed, tid)
        if self.name == "rand":
            return self._random(tid, seed)
        docs, scored_count = self.docs.lied(history, before_scores=self.name == "mtpe")
        if scored_count < self.n_startup:
            return self._random(tid, seed)
        return job_doc(self.algorithm([tid], self.domain, trials_from_docs(docs), seed)[0])

    def _random(self, tid: int, seed: int) -> dict[str, Any]:
        return job_doc(rand.suggest([tid], self.domain, trials_from_docs([]), seed)[0])


class DocCache:
    """hyperopt documents of finished trials, made once per (trial, version): with thousands of trials
    stored, converting every record at every suggestion would cost more than the suggestion."""

    def __init__(self) -> None:
        self._finished: dict[int, tuple[int, dict[str, Any], float | None]] = {}

    def _finished_doc(self, job: p.Job) -> tuple[dict[str, Any], float | None]:
        cached = self._finished.get(job.tid)
        if cached is None or cached[0] != job.version:
            cached = (job.version, sampler_doc(job), finite_loss(job))
            self._finished[job.tid] = cached
        return cached[1], cached[2]

    def lied(self, history: list[p.Job], before_scores: bool = False) -> tuple[list[dict[str, Any]], int]:
        """Documents of the finished trials, plus pending ones finished with the worst loss seen (none
        before a loss is seen, unless ``before_scores``: then their lie has no loss); and how many
        finished trials have a loss (what the start-up phase counts)."""
        docs, losses = [], []
        for job in history:
            if job.state in p.FINAL_STATES:
                doc, loss = self._finished_doc(job)
                docs.append(doc)
                if loss is not None:
                    losses.append(loss)
        if losses or before_scores:
            lie = {"status": base.STATUS_OK, "loss": max(losses, default=None), "lie": True}
            docs += [sampler_doc(job, lie) for job in pending(history)]
        return sorted(docs, key=lambda doc: doc["tid"]), len(losses)


def sampler_doc(job: p.Job, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """A finished trial's hyperopt document, with the fields its algorithms read (ATPE reads the
    timestamps: never None); ``result`` makes a pending trial finished (the lie)."""
    if result is None:
        result = job.result if job.result else {"status": base.STATUS_FAIL, "loss": None}
    booked = as_datetime(job.book_time) or NEVER
    return {"state": base.JOB_STATE_DONE, "tid": job.tid, "exp_key": None, "owner": None, "version": job.version,
            "spec": job.doc.get("spec"), "misc": job.doc.get("misc", {}), "result": result,
            "book_time": booked, "refresh_time": as_datetime(job.finished_at or job.heartbeat_at) or booked}
