"""Check `advise`'s predictions against measured full-source builds and publish the table.

    python scripts/advise-validation.py REPORT_DIR... [--write-docs]

Each REPORT_DIR is a `mas-harness profile --report-dir` directory (its profile.json, and each profile's
trace.json when traced). Every build at more than one job is predicted from the other traces only
(harness/build/advice_validation.py) and compared with what was measured. --write-docs puts the table
between the markers in docs/advise-model.md and in README.md's Measured here, and writes
docs/advise-validation.json. Shipping a trace to `advise` is a separate, deliberate copy into
harness/resources/traces/ under `shipped_trace_name`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.build.advice import jobs_text, shipped_trace_name
from harness.build.advice_validation import NotValidated, ValidatedPrediction, measured_builds, validate
from harness.build.trace import Trace, lto_mode
from harness.human import duration_text, memory_text

ROOT = Path(__file__).resolve().parent.parent
MODEL_DOC = ROOT / "docs" / "advise-model.md"
TABLE_START = "<!-- VALIDATION TABLE"
TABLE_END = "<!-- END VALIDATION TABLE -->"
README_START, README_END = "<!-- ADVISE VALIDATION -->", "<!-- END ADVISE VALIDATION -->"
PEAK_TARGET, WALL_TARGET = 0.10, 0.15


def _percent(error: float | None) -> str:
    return "-" if error is None else f"{error:+.1%}"


def _setting(lto: str, codegen_units: int) -> str:
    return f"LTO {lto}, {codegen_units} codegen unit{'s' if codegen_units != 1 else ''}"


def _load(trace: Trace | None) -> str:
    """The 5-minute load average as the trace saw it at its start and end: how busy the machine was."""
    if trace is None:
        return "not recorded"
    return f"{trace.machine.loadavg_start[1]:.1f} → {trace.machine.loadavg_end[1]:.1f}"


def table(checks: list[ValidatedPrediction | NotValidated]) -> list[str]:
    lines = [
        "| measured build | setting | jobs | predicted peak | measured peak: rustc+cargo RSS / cgroup anon "
        "| error | predicted wall | measured wall | error | measured under load | predicted from |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for check in checks:
        build = check.measured
        head = f"| {build.ref} `{build.label}` | {_setting(build.lto, build.codegen_units)} | {build.jobs} "
        if isinstance(check, NotValidated):
            lines.append(head + f"| not predicted: {check.reason} | | | | | | | |")
            continue
        measured_peaks = " / ".join(
            memory_text(value) if value else "-" for value in (build.peak_rss_bytes, build.peak_cgroup_anon_bytes)
        )
        errors = " / ".join(_percent(e) for e in (check.peak_error_vs_rss, check.peak_error_vs_cgroup_anon))
        cost = check.source.cost_trace
        calibration = check.calibration
        origin = (
            f"costs: {_setting(cost.settings.lto, cost.settings.codegen_units)} at {jobs_text(cost.settings.jobs)}"
            f" (load {_load(cost)})"
        )
        origin += f"; threads: {calibration.source}" if calibration is not None else "; no calibration"
        lines.append(
            head
            + f"| {memory_text(check.predicted_peak_bytes)} | {measured_peaks} | {errors} "
            + f"| {duration_text(check.predicted_wall_seconds)} | {duration_text(check.measured_wall_seconds)} "
            + f"| {_percent(check.wall_error)} | {_load(build.trace)} | {origin} |"
        )
    return lines


def summary(checks: list[ValidatedPrediction | NotValidated]) -> dict[str, object]:
    done = [c for c in checks if isinstance(c, ValidatedPrediction)]

    def within(errors: list[float | None], target: float) -> str:
        known = [e for e in errors if e is not None]
        return f"{sum(abs(e) <= target for e in known)} of {len(known)}"

    return {
        "peak_within_10_percent_of_rss": within([c.peak_error_vs_rss for c in done], PEAK_TARGET),
        "peak_within_10_percent_of_cgroup_anon": within([c.peak_error_vs_cgroup_anon for c in done], PEAK_TARGET),
        "wall_within_15_percent": within([c.wall_error for c in done], WALL_TARGET),
    }


def document(checks: list[ValidatedPrediction | NotValidated]) -> dict[str, object]:
    rows: list[dict[str, object]] = []
    for check in checks:
        build = check.measured
        row: dict[str, object] = {
            "measured": build.label,
            "ref": build.ref,
            "lto": build.lto,
            "codegen_units": build.codegen_units,
            "jobs": build.jobs,
            "measured_peak_rss_bytes": build.peak_rss_bytes,
            "measured_peak_cgroup_anon_bytes": build.peak_cgroup_anon_bytes,
            "measured_compile_seconds": build.compile_seconds,
            "traced": build.trace is not None,
        }
        if isinstance(check, NotValidated):
            row["not_predicted"] = check.reason
        else:
            row |= {
                "predicted_peak_bytes": check.predicted_peak_bytes,
                "predicted_wall_seconds": round(check.predicted_wall_seconds, 1),
                "measured_wall_seconds": round(check.measured_wall_seconds, 1),
                "peak_error_vs_rss": check.peak_error_vs_rss,
                "peak_error_vs_cgroup_anon": check.peak_error_vs_cgroup_anon,
                "wall_error": check.wall_error,
                "cost_trace": shipped_trace_name(check.source.cost_trace),
                "calibration": None if check.calibration is None else check.calibration.source,
            }
        rows.append(row)
    return {"targets": {"peak": PEAK_TARGET, "wall": WALL_TARGET}, "summary": summary(checks), "checks": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dirs", nargs="+", type=Path)
    parser.add_argument(
        "--assume",
        action="append",
        default=[],
        metavar="PROFILE=LTO,UNITS,JOBS",
        help="the knobs of a profile that left them to the Dockerfile's defaults, e.g. low-ram=off,16,2",
    )
    parser.add_argument("--write-docs", action="store_true", help="update docs/advise-model.md and the JSON")
    args = parser.parse_args()

    assumed = {}
    for item in args.assume:
        name, _, knobs = item.partition("=")
        lto, units, jobs = knobs.split(",")
        assumed[name] = (lto_mode(lto), int(units), int(jobs))
    builds = [build for directory in args.report_dirs for build in measured_builds(directory, assumed=assumed)]
    traces = [build.trace for build in builds if build.trace is not None]
    checks = validate(traces, builds)
    lines = table(checks)
    print("\n".join(lines))
    print(json.dumps(summary(checks), indent=2))
    if args.write_docs:
        text = MODEL_DOC.read_text(encoding="utf-8")
        start = text.index(TABLE_START)
        end = text.index(TABLE_END)
        header = text[start : text.index("-->", start) + 3]
        new = "\n".join([header, "", *lines, "", TABLE_END])
        MODEL_DOC.write_text(text[:start] + new + text[end + len(TABLE_END) :], encoding="utf-8")
        readme = ROOT / "README.md"
        text = readme.read_text(encoding="utf-8")
        start, end = text.index(README_START) + len(README_START), text.index(README_END)
        readme.write_text(text[:start] + "\n" + "\n".join(lines) + "\n" + text[end:], encoding="utf-8")
        (ROOT / "docs" / "advise-validation.json").write_text(json.dumps(document(checks), indent=2) + "\n")


if __name__ == "__main__":
    main()
