"""status, apply and revert: one engine call on one checkout, reported the same way."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from harness.analysis.tree import tree_target
from harness.config.pins import Pins
from harness.config.superproject import SuperprojectConfig
from harness.patch import engine
from harness.patch.patchfile import Patch
from harness.report.views import tree_outcome
from harness.results import Outcome

Operation = Callable[[Path, Patch], engine.PatchReport | engine.ApplyResult]

# The command's engine call, and whether the submodule must be at its recorded commit: apply refuses to patch a
# submodule checked out elsewhere; status and revert report on, or undo, whatever is there.
OPERATIONS: dict[str, tuple[Operation, bool]] = {
    "status": (engine.status, False),
    "apply": (engine.apply, True),
    "revert": (engine.revert, False),
}


def on_tree(
    command: str, *, checkout: Path | None, patch: Path | None, superproject: SuperprojectConfig | None, pins: Pins
) -> Outcome:
    operation, for_apply = OPERATIONS[command]
    target = tree_target(checkout=checkout, patch=patch, superproject=superproject, pins=pins, for_apply=for_apply)
    started = time.perf_counter()
    answer: engine.PatchReport | engine.ApplyResult | engine.PatchConflict
    try:
        answer = operation(target.tree, target.patch)
    except engine.PatchConflict as conflict:
        answer = conflict
    return tree_outcome(command, target, answer, duration=time.perf_counter() - started)
