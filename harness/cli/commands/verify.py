from __future__ import annotations

from harness.analysis.submodule_checks import verify as verify_recorded
from harness.cli.commands.run_context import open_checks, with_run_facts
from harness.config.settings import Settings
from harness.config.superproject import SuperprojectConfig
from harness.report.views import superproject_outcome
from harness.results import Outcome


def verify(*, superproject: SuperprojectConfig, settings: Settings) -> Outcome:
    checks = open_checks(settings)
    check = verify_recorded(superproject, settings=settings, checks=checks)
    outcome = superproject_outcome(check, command="verify")
    return with_run_facts(outcome, checks=checks, upstream=check.source, offline=settings.offline)
