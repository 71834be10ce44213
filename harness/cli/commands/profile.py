from __future__ import annotations

from pathlib import Path

from rich.console import Console

from harness.build.measure import load_profile_report, run_profiles
from harness.build.prepare import prepare_build
from harness.cli.commands.profile_plan import profile_names, profiles_for
from harness.config.pins import newest_applying_pin
from harness.config.requests import ProfileRequest
from harness.config.run import Run
from harness.errors import BadInput
from harness.knobs import parse_build_args
from harness.report.builds import profile_outcome, write_profile_junit, write_profile_outputs
from harness.results import Outcome


def profile(run: Run, request: ProfileRequest, *, progress: Console) -> Outcome:
    """One build per profile, one after the other; `upstream` is what the ref's own Cargo.toml does."""
    names = profile_names(run, request.names)
    if request.interval <= 0:
        raise BadInput("--interval must be a positive number of seconds")
    extra_args = parse_build_args(request.spec.build_args)
    ref = request.ref or newest_applying_pin(run.pins)
    inputs = prepare_build(run, request.spec, ref=ref, build_args=extra_args)
    profiles = profiles_for(run, names, ref=ref, release=inputs.release)
    report_dir = request.report_dir or Path("reports") / f"profile-{ref}"
    report = run_profiles(inputs, profiles=profiles, request=request, report_dir=report_dir, console=progress)
    written = [*write_profile_outputs(report, report_dir), write_profile_junit(report, report_dir)]
    return profile_outcome(report, written=written)


def profile_from_report(*, report_file: Path, report_dir: Path | None) -> Outcome:
    """Render a profile.json again (table, Markdown, plot, JUnit), building nothing."""
    report = load_profile_report(report_file)
    out_dir = report_dir or report_file.parent
    written = [*write_profile_outputs(report, out_dir), write_profile_junit(report, out_dir)]
    return profile_outcome(report, written=written)
