from __future__ import annotations

from harness.analysis.compat import variant_for
from harness.cli.commands.run_context import open_analysis
from harness.config.requests import ExportRequest
from harness.config.run import Run
from harness.errors import BadInput
from harness.files import write_output
from harness.report.patch_outcome import patch_outcome
from harness.report.run_frame import latest_frame
from harness.results import Outcome
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
    return patch_outcome(
        ref,
        variant_ref,
        static,
        output=output,
        frame=latest_frame(upstream.latest, source=upstream.latest_from),
    )
