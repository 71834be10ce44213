"""`patch` as an Outcome: the harness's variant for a ref, written or not, and why."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from harness.files import output_name
from harness.results import NO_FRAME, Frame, Location, Outcome, Result, Status

if TYPE_CHECKING:
    from harness.analysis.patched import PatchedRef, StaticSummary


def patch_outcome(
    ref: str,
    variant_ref: PatchedRef,
    static: StaticSummary | None,
    *,
    output: Path,
    frame: Frame = NO_FRAME,
) -> Outcome:
    """Passes when the variant applies to the ref and passes the static checks; it was written when it applies."""
    written = variant_ref.patched is not None
    variant = variant_ref.choice.variant
    if not written:
        status, reason = (
            Status.FAILED,
            (
                f"the {variant.name} variant does not apply to {ref} ({variant_ref.report.state}: "
                f"{variant_ref.report.reason}); nothing written: refresh your patch instead"
            ),
        )
    elif static is not None and not static.ok:
        failed = ", ".join(dict.fromkeys(f.check for f in static.failed))
        status, reason = (
            Status.FAILED,
            f"wrote {output_name(output)}: the {variant.name} variant applies to {ref} but fails {failed}",
        )
    else:
        status, reason = (
            Status.OK,
            f"wrote {output_name(output)}: the {variant.name} variant, which applies to {ref} and passes the "
            "static checks",
        )
    result = Result(
        name="patch",
        status=status,
        reason=reason,
        group=f"patch.{ref}",
        detail=variant_ref.choice.reason,
        location=Location(path=str(output)) if written else None,
    )
    return Outcome(
        command="patch",
        frame=frame,
        title=f"patch for {ref}",
        results=(result,),
        notes=(variant_ref.choice.reason, reason),
        data={
            "ref": ref,
            "variant": variant.name,
            "range": variant.range_text,
            "source_patch": variant_ref.patch_path.name,
            "applies": variant_ref.patched is not None,
            "static_ok": None if static is None else static.ok,
            "output": str(output) if written else None,
        },
    )
