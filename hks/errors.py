"""Errors that reach the user as one clear line (the CLI prints them without a traceback)."""


class HksError(Exception):
    """A problem the user can fix; the message says what is wrong and how to fix it."""


class ConfigError(HksError):
    """An unknown option, a bad value or an inconsistent combination of settings."""


class DatasetError(HksError):
    """The dataset archive is missing, corrupt or cannot be downloaded."""


class TrialsFileError(HksError):
    """``results.pkl`` is corrupt or belongs to another search; it is never overwritten."""


class SpaceError(HksError):
    """A search space cannot be imported, or a point of it builds an invalid model."""


class StoreError(HksError):
    """A job store URL is malformed, its server unreachable, or its contents inconsistent."""


class WorkerError(HksError):
    """A worker cannot serve an experiment (another space or objective), or every local worker died."""


class TrialAbandoned(BaseException):
    """Raised inside a worker's training at an epoch boundary when the trial is no longer its own
    (its lease was lost, or it ran past ``--trial-time-limit``). A ``BaseException`` so that no
    objective's ``except Exception`` records it as the trial's failure."""
