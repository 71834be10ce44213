from __future__ import annotations

from harness.analysis.submodule_checks import verify as verify_recorded
from harness.cli.commands.run_context import open_analysis
from harness.config.run import Run
from harness.report.run_frame import checks_frame
from harness.report.views import superproject_outcome
from harness.results import Outcome


def verify(run: Run) -> Outcome:
    """The superproject's patch against the commit it records: applies, and passes the static checks."""
    analysis = open_analysis(run)
    check = verify_recorded(run, analysis=analysis)
    frame = checks_frame(analysis.checks, upstream=check.source, offline=run.offline)
    return superproject_outcome(check, command="verify", frame=frame)
