from __future__ import annotations

import time
from pathlib import Path

from harness.analysis.tree import tree_target
from harness.config.pins import Pins
from harness.config.superproject import SuperprojectConfig
from harness.patch import engine
from harness.report.views import tree_outcome
from harness.results import Outcome


def status(
    *, checkout: Path | None, patch: Path | None, superproject: SuperprojectConfig | None, pins: Pins
) -> Outcome:
    target = tree_target(checkout=checkout, patch=patch, superproject=superproject, pins=pins, for_apply=False)
    started = time.perf_counter()
    report = engine.status(target.tree, target.patch)
    return tree_outcome("status", target, report, duration=time.perf_counter() - started)
