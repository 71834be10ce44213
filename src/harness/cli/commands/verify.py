from __future__ import annotations

from harness.analysis.superproject import verify as verify_recorded
from harness.config.pins import Settings
from harness.config.superproject import SuperprojectConfig
from harness.report.views import superproject_outcome
from harness.results import Outcome


def verify(*, superproject: SuperprojectConfig, settings: Settings) -> Outcome:
    check = verify_recorded(superproject, settings=settings)
    return superproject_outcome(check, command="verify")
