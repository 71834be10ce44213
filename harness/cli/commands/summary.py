from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.errors import BadInput
from harness.report.summary import summarize
from harness.results import Outcome


def summary(
    *, reports: Path, pytest_files: Sequence[str], json_reports: Sequence[str], profiles: Sequence[str]
) -> Outcome:
    if not (pytest_files or json_reports or profiles):
        raise BadInput("name the reports to summarise: --pytest XML, --refs JSON or --profile JSON")
    if not reports.is_dir():
        raise BadInput(f"--reports {reports} is not a directory")
    return summarize(reports, pytest_files=pytest_files, json_reports=json_reports, profile_reports=profiles)
