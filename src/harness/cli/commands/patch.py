from __future__ import annotations

from pathlib import Path

from harness.analysis.compat import export_variant
from harness.config.pins import Pins
from harness.results import Location, Outcome, Result, Status
from harness.upstream.cache import UpstreamCache


def export(*, cache: UpstreamCache, ref: str, output: Path, force: bool, pins: Pins) -> Outcome:
    """The harness's variant for REF, written to OUTPUT when it applies there."""
    variant_ref, static, written = export_variant(cache, ref, pins=pins, output=output, force=force)
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
            f"wrote {output}: the {variant.name} variant applies to {ref} but fails {failed}",
        )
    else:
        status, reason = (
            Status.OK,
            (f"wrote {output}: the {variant.name} variant, which applies to {ref} and passes the static checks"),
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
