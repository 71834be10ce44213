from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from harness.build.measure import load_profile_report, run_profiles
from harness.build.prepare import prepare_build
from harness.cli.commands.profile_plan import profile_names, profiles_for
from harness.config.pins import newest_applying_pin
from harness.config.run import Run
from harness.errors import BadInput
from harness.knobs import ExportFormat, parse_build_args
from harness.report.builds import profile_outcome, write_profile_junit, write_profile_outputs
from harness.results import Outcome


def profile(  # noqa: PLR0913  # one keyword per option of the command, by design
    *,
    run: Run,
    ref: str | None,
    names: Sequence[str],
    source: str,
    build_args: Sequence[str],
    interval: float,
    report_dir: Path | None,
    keep_images: bool,
    air_gapped: bool | None,
    builder: str | None,
    load: bool,
    export: ExportFormat | None,
    progress: Console,
) -> Outcome:
    """One build per profile, one after the other; `upstream` is what the ref's own Cargo.toml does."""
    names = profile_names(run, names)
    if interval <= 0:
        raise BadInput("--interval must be a positive number of seconds")
    extra_args = parse_build_args(build_args)
    ref = ref or newest_applying_pin(run.pins)
    inputs = prepare_build(
        run,
        ref=ref,
        source=source,
        build_args=extra_args,
        air_gapped=air_gapped,
        builder=builder,
        load=load,
        export=export,
    )
    profiles = profiles_for(run, names, ref=ref, release=inputs.release)
    report_dir = report_dir or Path("reports") / f"profile-{ref}"
    report = run_profiles(
        inputs,
        profiles=profiles,
        base_build_args=extra_args,
        report_dir=report_dir,
        interval=interval,
        keep_images=keep_images,
        console=progress,
    )
    written = [*write_profile_outputs(report, report_dir), write_profile_junit(report, report_dir)]
    return profile_outcome(report, written=written)


def profile_from_report(*, report_file: Path, report_dir: Path | None) -> Outcome:
    """Render a profile.json again (table, Markdown, plot, JUnit), building nothing."""
    report = load_profile_report(report_file)
    out_dir = report_dir or report_file.parent
    written = [*write_profile_outputs(report, out_dir), write_profile_junit(report, out_dir)]
    return profile_outcome(report, written=written)
