from __future__ import annotations

from pathlib import Path

from rich.console import Console

from harness.build.prepare import prepare_build
from harness.build.runner import BuildOptions, build_ref
from harness.config.requests import BuildRequest
from harness.config.run import Run
from harness.knobs import CI_BUILD_ARGS, parse_build_args
from harness.report.builds import build_outcome
from harness.results import Outcome


def build(run: Run, request: BuildRequest, *, progress: Console) -> Outcome:
    """The ref's patched builder stage (and with `final`, the shipped image), built with the CI settings unless
    overridden, and the images checked; with `trace`, traced from inside the build (trace.json in the report dir)."""
    args = parse_build_args(request.spec.build_args, defaults=CI_BUILD_ARGS)
    inputs = prepare_build(run, request.spec, ref=request.ref, build_args=args)
    report_dir = request.report_dir or Path("reports") / f"build-{request.ref}"
    # Where the host cannot see the build, only the in-build trace says what it cost.
    traced = request.trace or not inputs.target.processes_visible
    report = build_ref(inputs, args, BuildOptions(report_dir=report_dir, trace=traced), console=progress)
    return build_outcome(report, report_file=report_dir / "report.json")
