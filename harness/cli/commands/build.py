from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from harness.build.plan import BuildStage
from harness.build.prepare import prepare_build
from harness.build.runner import build_ref
from harness.config.run import Run
from harness.knobs import CI_BUILD_ARGS, ExportFormat, parse_build_args
from harness.report.builds import build_outcome
from harness.results import Outcome


def build(  # noqa: PLR0913  # one keyword per option of the command, by design
    *,
    run: Run,
    ref: str,
    stage: BuildStage,
    source: str,
    build_args: Sequence[str],
    forced_patch: Path | None,
    air_gapped: bool | None,
    builder: str | None,
    load: bool,
    export: ExportFormat | None,
    report_dir: Path | None,
    progress: Console,
    trace: bool = False,
) -> Outcome:
    """The ref's patched builder stage (and with `final`, the shipped image), built with the CI settings unless
    overridden, and the images checked; with `trace`, traced from inside the build (trace.json in the report dir)."""
    args = parse_build_args(build_args, defaults=CI_BUILD_ARGS)
    inputs = prepare_build(
        run,
        ref=ref,
        source=source,
        forced_patch=forced_patch,
        build_args=args,
        air_gapped=air_gapped,
        stage=stage,
        builder=builder,
        load=load,
        export=export,
    )
    report_dir = report_dir or Path("reports") / f"build-{ref}"
    # Where the host cannot see the build, only the in-build trace says what it cost.
    traced = trace or not inputs.target.processes_visible
    report = build_ref(inputs, build_args=args, report_dir=report_dir, console=progress, trace=traced)
    return build_outcome(report, report_file=report_dir / "report.json")
