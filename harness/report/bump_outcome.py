"""`bump` as an Outcome: the plan (or what was done), the check of the result, and the commit message."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.report.json_forms import bump_plan_json
from harness.report.run_frame import latest_frame
from harness.report.views import superproject_parts
from harness.results import NO_FRAME, Frame, Outcome, Result, Status

if TYPE_CHECKING:
    from harness.analysis.bump import BumpDone, BumpPlan


def _message_notes(message: str, *, shown: bool) -> list[str]:
    return ["", "commit message:", "", *message.rstrip("\n").splitlines()] if shown else []


def bump_outcome(
    plan: BumpPlan, done: BumpDone | None, *, dry_run: bool, message_shown: bool = True, frame: Frame = NO_FRAME
) -> Outcome:
    """Up to date, the plan of a --dry-run, a bump that cannot be made (nothing fits), or a bump made."""
    sub = plan.submodule
    group = f"bump.{plan.to_label}"
    data: dict[str, object] = {"mode": "superproject", "bump": bump_plan_json(plan), "dry_run": dry_run}
    frame = latest_frame(plan.latest, source=plan.latest_from or plan.check.source).within(frame)
    if plan.up_to_date:
        reason = f"up to date at {plan.to_label}: {sub.path} is there and {plan.patch_shown} fits it as it is"
        return Outcome(
            command="bump",
            frame=frame,
            title=f"bump {sub.path}",
            results=(Result(name="bump", status=Status.OK, reason=reason, group=group),),
            notes=(reason,),
            data={**data, "message": None, "committed": None},
        )
    if plan.choice is None:
        reason = f"nothing fits {plan.to_label}, so nothing was changed: " + "; ".join(plan.refused)
        suggestion = plan.check.suggestion.lines() if plan.check.suggestion else []
        return Outcome(
            command="bump",
            frame=frame,
            title=f"bump {sub.path} to {plan.to_label}",
            results=(Result(name="bump", status=Status.FAILED, reason=reason, group=group),),
            notes=(reason, *(f"  {h.describe()}" for h in plan.check.compat.hunks), *suggestion),
            data={**data, "message": None, "committed": None},
        )
    if done is None:
        message = plan.message(checked=False)
        steps = plan.steps()
        return Outcome(
            command="bump",
            frame=frame,
            title=f"bump {sub.path} to {plan.to_label} (dry run)",
            results=(
                Result(
                    name="plan",
                    status=Status.OK,
                    reason=f"{plan.from_label} -> {plan.to_label}: {plan.choice.summary}; nothing written (--dry-run)",
                    group=group,
                ),
            ),
            notes=(
                "would:",
                *(f"  {i}. {step}" for i, step in enumerate(steps, 1)),
                *_message_notes(message, shown=message_shown),
            ),
            data={**data, "message": message, "committed": None},
        )
    final = done.final
    checked = superproject_parts(final, command="bump")
    committed = f"; committed {done.committed[:12]}" if done.committed else "; staged, not committed (--commit does)"
    reason = f"{plan.from_label} -> {plan.to_label}: {plan.choice.summary}{committed}"
    done_notes = (reason, *(f"  {step}: done" for step in plan.steps()))
    return Outcome(
        command="bump",
        frame=latest_frame(final.latest, source=final.latest_from).within(frame),
        title=f"bump {sub.path} to {plan.to_label}",
        results=(Result(name="bump", status=Status.OK, reason=reason, group=group), *checked["results"]),
        tables=checked["tables"],
        notes=(*done_notes, *checked["notes"], *_message_notes(done.message, shown=message_shown)),
        data={**checked["data"], **data, "message": done.message, "committed": done.committed},
    )
