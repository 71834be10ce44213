"""Builds rendered: `build` and `profile` as Outcomes; a profile run's table, Markdown and memory plot (PNG, SVG)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from harness.build.figures import BuildFigures
from harness.build.measure import ProfileReport, ProfileRun
from harness.build.runner import BuildReport, Check
from harness.files import atomic_write
from harness.human import duration_text, memory_text
from harness.report.formats import junit_xml, markdown_table
from harness.results import Column, Outcome, Result, Row, Status, Table, status_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLUMNS = (
    "profile",
    "build args",
    "wall",
    "compile",
    "peak RSS rustc+cargo",
    "peak cgroup anon",
    "peak cgroup",
    "max rustc",
    "heaviest rustc",
    "binary",
)


def check_status(check: Check) -> Status:
    return Status.SKIPPED if check.skipped else status_of(check.ok)


def _with_ratio(text: str, ratio: float | None, *, baseline: bool) -> str:
    if baseline or ratio is None:
        return text
    return f"{text} (x{ratio:.2f})"


def _args(run: ProfileRun) -> str:
    knobs = run.profile.build_args
    return " ".join(f"{key}={value}" for key, value in knobs.items()) or "(patch defaults)"


def rows(report: ProfileReport) -> Iterator[tuple[str, ...]]:
    """One row per profile; ratios (x) are against the `upstream` profile."""
    for run in report.runs:
        ratios = report.ratios(run)
        base = run is report.baseline
        figures = run.figures
        sampler = run.build.sampler
        crate = (
            f"{sampler.peak_rustc_crate} {memory_text(sampler.peak_rustc_crate_rss_bytes)}"
            if sampler.peak_rustc_crate
            else "n/a"
        )
        if not sampler.available:
            yield _unsampled_row(run, base=base, ratios=ratios)
            continue
        yield (
            run.profile.name,
            _args(run),
            _with_ratio(duration_text(run.wall_seconds), ratios.get("wall"), baseline=base),
            duration_text(figures.compile_seconds),
            _with_ratio(memory_text(figures.peak_rss_bytes), ratios.get("peak_rss"), baseline=base),
            _with_ratio(memory_text(figures.peak_cgroup_anon_bytes), ratios.get("peak_cgroup_anon"), baseline=base),
            _with_ratio(memory_text(figures.peak_cgroup_bytes), ratios.get("peak_cgroup"), baseline=base),
            str(figures.max_concurrent_rustc),
            crate,
            _with_ratio(memory_text(run.build.binary_size_bytes), ratios.get("binary_size"), baseline=base),
        )


def _unsampled_row(run: ProfileRun, *, base: bool, ratios: dict[str, float | None]) -> tuple[str, ...]:
    """A build the host could not see: its sampler columns are unknown, never zero; the trace's figures where it has
    them, named as the trace's."""
    trace = run.build.figures.trace if run.build.figures else None
    unseen = "n/a (not seen)"
    return (
        run.profile.name,
        _args(run),
        _with_ratio(duration_text(run.wall_seconds), ratios.get("wall"), baseline=base),
        f"{duration_text(trace.wall_seconds)} (trace)" if trace else unseen,
        unseen,
        unseen,
        unseen,
        f"{trace.max_concurrent_rustc} (trace)" if trace else unseen,
        f"{trace.peak_rustc_crate} {memory_text(trace.peak_rustc_rss_bytes)} (trace)" if trace else unseen,
        _with_ratio(memory_text(run.build.binary_size_bytes), ratios.get("binary_size"), baseline=base),
    )


def profile_table(report: ProfileReport) -> Table:
    # On an 80-column terminal (most CI logs) what stays is the verdict and the memory the patch is about.
    optional = {"build args", "compile", "peak cgroup", "max rustc", "heaviest rustc", "binary"}
    return Table(
        title=f"Build cost per profile: {report.ref} ({report.source})",
        columns=tuple(Column(header=c, optional=c in optional) for c in COLUMNS),
        rows=tuple(
            Row(cells=cells, status=status_of(run.build.ok))
            for run, cells in zip(report.runs, rows(report), strict=True)
        ),
    )


def profile_markdown(report: ProfileReport, *, plot: str | None = None) -> str:
    machine = report.machine
    lines = [
        f"### Build cost per profile: {report.ref} ({report.source})",
        "",
        f"Machine: {machine.get('cpus')} CPUs, {memory_text(int(str(machine.get('memory_bytes') or 0)))} RAM, "
        f"kernel {machine.get('kernel')}; sampled every {report.interval_seconds}s. "
        "Ratios (x) are against the `upstream` profile.",
        "",
        markdown_table(
            (*COLUMNS, "ok"),
            [
                (*row, "ok" if run.build.ok else "**FAILED**")
                for run, row in zip(report.runs, rows(report), strict=True)
            ],
        ).rstrip("\n"),
        "",
        f"Cache state: {report.cache_state}.",
    ]
    for run in report.runs:
        if run.profile.sources:
            lines += ["", f"Where `{run.profile.name}` takes its values from ({run.profile.description}):", ""]
            lines += [
                f"- `{key}={run.profile.build_args.get(key, '')}`: {source}"
                for key, source in run.profile.sources.items()
            ]
    if plot:
        lines += ["", f"![memory over time]({plot})"]
    return "\n".join(lines) + "\n"


def _mark_peak(axes: Axes, t: float | None, value: int | None, *, scale: float, style: tuple[str, str]) -> None:
    marker, colour = style
    if t is None or value is None:
        return
    peak = value / 1e9
    axes.plot([t / scale], [peak], marker=marker, color=colour)
    axes.annotate(f"{peak:.2f} GB", (t / scale, peak), textcoords="offset points", xytext=(4, 6), color=colour)


def plot_memory(report: ProfileReport, out_stem: Path) -> list[Path]:
    """Memory over time, one colour per profile: process RSS solid, cgroup anonymous memory dashed, peaks marked.

    The cgroup's usage with page cache is left out of the plot: it grows with every file the build
    reads and says more about the host's free memory than about the build's needs.
    """
    import matplotlib  # noqa: PLC0415  # only `profile` needs it, and it is slow to import

    matplotlib.use("Agg")
    from matplotlib import pyplot  # noqa: PLC0415

    longest = max((s.t for run in report.runs for s in run.build.sampler.samples), default=0.0)
    scale, unit = (60.0, "minutes") if longest > 180 else (1.0, "seconds")
    figure, axes = pyplot.subplots(figsize=(11, 6), dpi=110)
    for index, run in enumerate(report.runs):
        colour = f"C{index}"
        samples = run.build.sampler.samples
        minutes = [s.t / scale for s in samples]
        axes.plot(
            minutes, [s.rss_bytes / 1e9 for s in samples], color=colour, label=f"{run.profile.name}: rustc+cargo RSS"
        )
        anon = [(s.t / scale, s.cgroup_anon_bytes / 1e9) for s in samples if s.cgroup_anon_bytes is not None]
        if anon:
            xs, ys = zip(*anon, strict=True)
            axes.plot(xs, ys, color=colour, linestyle="--", alpha=0.6, label=f"{run.profile.name}: build cgroup, anon")
        figures = run.figures
        _mark_peak(axes, figures.peak_rss_t, figures.peak_rss_bytes, scale=scale, style=("o", colour))
        _mark_peak(axes, figures.peak_cgroup_anon_t, figures.peak_cgroup_anon_bytes, scale=scale, style=("^", colour))
    axes.set_xlabel(f"{unit} since the build started")
    axes.set_ylabel("memory (GB)")
    axes.set_title(f"MAS builder stage, {report.ref} ({report.source}): memory per knob profile")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    written = []
    for suffix in (".png", ".svg"):
        path = out_stem.with_suffix(suffix)
        buffer = io.BytesIO()
        figure.savefig(buffer, format=suffix.lstrip("."), metadata={"Date": None} if suffix == ".svg" else None)
        atomic_write(path, buffer.getvalue())
        written.append(path)
    pyplot.close(figure)
    return written


def write_profile_outputs(report: ProfileReport, report_dir: Path) -> list[Path]:
    """profile.md and memory.png/.svg beside the profile.json the run wrote."""
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = plot_memory(report, report_dir / "memory")
    markdown = report_dir / "profile.md"
    atomic_write(markdown, profile_markdown(report, plot=plots[0].name).encode())
    return [markdown, *plots]


def profile_outcome(report: ProfileReport, *, written: list[Path]) -> Outcome:
    """One result per profile and check (the build's own checks), each profile's wall time on its first."""
    results = tuple(
        Result(
            name=check.name,
            status=check_status(check),
            reason=check.detail,
            group=f"profile.{run.profile.name}",
            duration=run.wall_seconds if index == 0 else 0.0,
        )
        for run in report.runs
        for index, check in enumerate(run.build.checks)
    )
    return Outcome(
        command="profile",
        title=f"profile {report.ref} ({report.source})",
        results=results,
        tables=(profile_table(report),),
        notes=(
            *(f"wrote {path}" for path in written),
            *(
                f"{run.profile.name}: trace {run.build.trace.file or f'none: {run.build.trace.error}'}"
                for run in report.runs
                if run.build.trace is not None
            ),
        ),
        data={"report": _without_samples(report.as_json()), "files": [str(path) for path in written]},
    )


def _without_samples(data: dict[str, object]) -> dict[str, object]:
    """The report as profile.json has it, less the samples (those stay in profile.json)."""
    profiles = data.get("profiles")
    if isinstance(profiles, list):
        data = {**data, "profiles": [{k: v for k, v in p.items() if k != "samples"} for p in profiles]}
    return data


def write_profile_junit(report: ProfileReport, report_dir: Path) -> Path:
    """JUnit (one case per profile and check) beside the report."""
    junit = report_dir / "profile.xml"
    atomic_write(junit, junit_xml(profile_outcome(report, written=[])))
    return junit


def figures_note(figures: BuildFigures) -> str:
    """Where the build's memory and time figures come from, in one line."""
    source = figures.memory_source
    if source is None:
        return (
            f"memory figures: none (host sampler: {figures.sampler.unavailable}; in-build trace: "
            f"{figures.trace_unavailable})"
        )
    agreed = figures.agreement()
    both = f"; both sources saw it and {'agree' if agreed.agree else 'DISAGREE'}" if agreed else ""
    return f"memory figures: from the {source}{both}"


def trace_notes(report: BuildReport) -> list[str]:
    """Where the build's trace is, and what it measured beside what the host's sampler saw."""
    trace = report.trace
    if trace is None:
        return []
    if trace.file is None:
        return [f"trace: none: {trace.error}"]
    figures = trace.figures or {}
    sampler = report.sampler
    rss = figures.get("peak_rustc_rss_bytes")
    cargo = figures.get("cargo_peak_rss_bytes")
    sampled = (
        f"{sampler.peak_rustc_crate} {memory_text(sampler.peak_rustc_crate_rss_bytes)}"
        if sampler.peak_rustc_crate
        else "none seen"
    )
    together = memory_text(sampler.peak_rss_bytes)
    if not sampler.available:
        # The host saw nothing of a build elsewhere: unknown, not zero.
        sampled = together = "not seen by the host"
    return [
        f"trace: {trace.file} ({figures.get('units')} units)",
        f"heaviest rustc, kernel's count at exit: {figures.get('peak_rustc_crate')} "
        f"{memory_text(rss if isinstance(rss, int) else None)} (sampler: {sampled})",
        f"cargo's peak RSS (VmHWM): {memory_text(cargo if isinstance(cargo, int) else None)} "
        f"(sampler, rustc+cargo together: {together})",
        *(f"trace: {problem}" for problem in trace.problems),
    ]


def build_outcome(report: BuildReport, *, report_file: Path) -> Outcome:
    """`build`: one result per check of the build and its image (the build's wall time on the first)."""
    group = f"build.{report.ref}"
    results = tuple(
        Result(
            name=check.name,
            status=check_status(check),
            reason=check.detail,
            group=group,
            duration=report.sampler.wall_seconds if index == 0 else 0.0,
        )
        for index, check in enumerate(report.checks)
    )
    title = f"build {report.ref} ({report.source}, {report.stage} stage)"
    table = Table(
        title=title,
        columns=(Column(header="check"), Column(header="detail")),
        rows=tuple(Row(cells=(check.name, check.detail), status=check_status(check)) for check in report.checks),
    )
    notes = [f"deviation: {deviation}" for deviation in report.deviations]
    notes.append(f"built on {report.target.describe()}; images {report.target.images.describe()}")
    if report.figures is not None:
        notes.append(figures_note(report.figures))
    if report.final is not None and report.final.facts is not None:
        notes.append(f"final image: {report.final.facts.image}")
    notes += trace_notes(report)
    notes.append(f"report: {report_file}")
    return Outcome(
        command="build",
        title=title,
        results=results,
        tables=(table,),
        notes=tuple(notes),
        data={"build": report.as_json(), "report_file": str(report_file)},
    )
