from __future__ import annotations

import time
from pathlib import Path

from harness.analysis.tree import tree_target
from harness.config.pins import Pins
from harness.config.superproject import SuperprojectConfig
from harness.patch import engine
from harness.report.views import tree_outcome
from harness.results import Outcome


def revert(
    *, checkout: Path | None, patch: Path | None, superproject: SuperprojectConfig | None, pins: Pins
) -> Outcome:
    target = tree_target(checkout=checkout, patch=patch, superproject=superproject, pins=pins, for_apply=False)
    started = time.perf_counter()
    try:
        result = engine.revert(target.tree, target.patch)
    except engine.PatchConflict as conflict:
        elapsed = time.perf_counter() - started
        return tree_outcome("revert", target, conflict, duration=elapsed)
    return tree_outcome("revert", target, result, duration=time.perf_counter() - started)
