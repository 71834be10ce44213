from __future__ import annotations

from harness.analysis.superproject import verify as verify_recorded
from harness.cli.commands.run_context import open_verdicts, with_run_facts
from harness.config.pins import Settings
from harness.config.superproject import SuperprojectConfig
from harness.report.views import superproject_outcome
from harness.results import Outcome


def verify(*, superproject: SuperprojectConfig, settings: Settings) -> Outcome:
    verdicts = open_verdicts(settings)
    check = verify_recorded(superproject, settings=settings, verdicts=verdicts)
    outcome = superproject_outcome(check, command="verify")
    return with_run_facts(outcome, upstream=check.source, offline=settings.offline, verdicts=verdicts)
