from __future__ import annotations

from harness.analysis.submodule_checks import verify as verify_recorded
from harness.cli.commands.run_context import open_analysis, with_run_facts
from harness.config.run import Run
from harness.report.views import superproject_outcome
from harness.results import Outcome


def verify(run: Run) -> Outcome:
    """The superproject's patch against the commit it records: applies, and passes the static checks."""
    analysis = open_analysis(run)
    check = verify_recorded(run, analysis=analysis)
    outcome = superproject_outcome(check, command="verify")
    return with_run_facts(outcome, checks=analysis.checks, upstream=check.source, offline=run.offline)
