"""status, apply and revert: one call of harness.patch.apply on one checkout, reported the same way.

The patch is a series of one unless the superproject names a series: the same calls serve both.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.analysis.checkout_target import tree_target
from harness.config.requests import TreeRequest
from harness.patch import apply as patch_apply
from harness.report.views import tree_outcome
from harness.results import Outcome

Operation = Callable[..., patch_apply.SeriesReport | patch_apply.SeriesResult]

# The command's call, and whether the submodule must be at its recorded commit: apply refuses to patch a
# submodule checked out elsewhere; status and revert report on, or undo, whatever is there.
OPERATIONS: dict[str, tuple[Operation, bool]] = {
    "status": (patch_apply.series_status, False),
    "apply": (patch_apply.apply_series, True),
    "revert": (patch_apply.revert_series, False),
}


def on_tree(request: TreeRequest) -> Outcome:
    command = request.command
    operation, for_apply = OPERATIONS[command]
    target = tree_target(
        checkout=request.checkout,
        patch=request.patch,
        superproject=request.superproject,
        pins=request.pins,
        for_apply=for_apply,
    )
    started = time.perf_counter()
    answer: patch_apply.SeriesReport | patch_apply.SeriesResult | patch_apply.SeriesConflict
    try:
        answer = operation(target.tree, target.patches, journals=request.journals)
    except patch_apply.SeriesConflict as conflict:
        answer = conflict
    return tree_outcome(command, target, answer, duration=time.perf_counter() - started)
