from __future__ import annotations

from harness.analysis.compat import variant_for
from harness.cli.commands.run_context import open_analysis
from harness.config.requests import ExportRequest
from harness.config.run import Run
from harness.errors import BadInput
from harness.files import output_name, write_output
from harness.report.views import with_latest
from harness.results import Location, Outcome, Result, Status
from harness.upstream.submodule import open_ref


def export(run: Run, request: ExportRequest) -> Outcome:
    """The harness's variant for REF, written to OUTPUT when it applies there."""
    output, force = request.output, request.force
    upstream = open_ref(run, request.ref, pre=request.pre)
    ref = upstream.ref
    variant_ref, static = variant_for(upstream.cache, ref, pins=run.pins, analysis=open_analysis(run))
    written = variant_ref.patched is not None
    if written:
        try:
            write_output(output, variant_ref.patch_path.read_bytes(), mode=0o644, replace=force)
        except OSError as exc:
            raise BadInput(f"{output} cannot be written: {exc.strerror or exc}; nothing written") from None
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
    outcome = Outcome(
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
    return with_latest(outcome, upstream.latest, source=upstream.latest_from)
