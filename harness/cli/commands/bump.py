from __future__ import annotations

from harness.analysis.bump import carry_out, plan_bump, undo_interrupted
from harness.cli.commands.run_context import open_analysis
from harness.config.requests import BumpRequest
from harness.config.run import Run
from harness.report.bump_outcome import bump_outcome
from harness.report.run_frame import checks_frame, undone_frame
from harness.results import Outcome


def bump(run: Run, request: BumpRequest) -> Outcome:
    """Move the submodule to the request's ref and make the patch fit, staged (and committed with `commit`)."""
    undone = undo_interrupted(run.in_superproject(), dry_run=request.dry_run)
    analysis = open_analysis(run)
    checks = analysis.checks
    plan = plan_bump(run, request, analysis=analysis)
    done = None
    if not request.dry_run and not plan.up_to_date and plan.choice is not None:
        done = carry_out(plan, request, run=run, checks=checks)
    frame = undone_frame(undone).within(checks_frame(checks, upstream=plan.check.source, offline=run.offline))
    return bump_outcome(plan, done, dry_run=request.dry_run, message_shown=request.message_file is None, frame=frame)
