"""The search report: ``results/report.html`` and the PNGs it shows (see docs/report.md).

Search drivers call :func:`safe_write_report` (never raises) or :func:`write_report` at the end of a
search; ``python -m hks report`` (:mod:`hks.report.command`) does the same from a results source.
"""

from hks.report.builder import REPORT_FILE, ReportOutcome, safe_write_report, write_report

__all__ = ["REPORT_FILE", "ReportOutcome", "safe_write_report", "write_report"]
