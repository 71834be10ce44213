from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.analysis.bump import BumpRequest, carry_out, plan_bump, undo_interrupted
from harness.cli.commands.run_context import open_checks, with_run_facts
from harness.config.settings import Settings
from harness.config.superproject import SuperprojectConfig
from harness.report.bump_outcome import bump_outcome
from harness.results import Outcome


def bump(  # noqa: PLR0913  # one keyword per option of the command, by design
    *,
    superproject: SuperprojectConfig,
    request: BumpRequest,
    settings: Settings,
    dry_run: bool,
    message_file: Path | None,
    commit: bool,
) -> Outcome:
    """Move the submodule to the request's ref and make the patch fit, staged (and committed with `commit`)."""
    undone = undo_interrupted(superproject, dry_run=dry_run)
    checks = open_checks(settings)
    plan = plan_bump(superproject, request, settings=settings, checks=checks)
    done = None
    if not dry_run and not plan.up_to_date and plan.choice is not None:
        done = carry_out(plan, settings=settings, checks=checks, message_file=message_file, commit=commit)
    outcome = bump_outcome(plan, done, dry_run=dry_run, message_shown=message_file is None)
    if undone is not None:
        outcome = replace(outcome, notes=(undone, *outcome.notes), data={**outcome.data, "undone": undone})
    return with_run_facts(outcome, checks=checks, upstream=plan.check.source, offline=settings.offline)
