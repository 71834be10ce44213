"""`advise` as an Outcome: the candidates' table, the recommendation and its build-arg lines, the JSON body."""

from __future__ import annotations

from typing import Any

from harness.build.advice import Advice, Candidate, build_arg_line, harness_build_line, jobs_text
from harness.human import binary_size_text, duration_text, memory_text
from harness.results import Column, Outcome, Result, Row, Status, Table

PLOT_FORMATS = ("png", "svg", "pdf")
"""What `advise --plot FILE` writes, chosen by FILE's suffix."""


def _candidate_json(candidate: Candidate) -> dict[str, Any]:
    return {
        "jobs": candidate.jobs,
        "lto": candidate.lto,
        "codegen_units": candidate.codegen_units,
        "build_args": dict(candidate.build_args),
        "predicted_peak_bytes": candidate.peak_bytes,
        "predicted_wall_seconds": round(candidate.wall_seconds, 3),
        "fits": candidate.fits,
        "beyond_measured": candidate.beyond_measured,
        "extra_threads_modelled": candidate.schedule.extra_threads,
        "peak_units": list(candidate.schedule.peak_units[:5]),
    }


def _fits(candidate: Candidate, advice: Advice) -> str:
    if candidate is advice.recommended:
        return "yes <- fastest that fits"
    if advice.recommended is None and candidate is advice.lowest_peak:
        return "no <- lowest peak"
    return "yes" if candidate.fits else "no"


def advice_outcome(advice: Advice, *, choice_note: str | None = None) -> Outcome:
    usable = advice.usable_bytes
    budget = f"{binary_size_text(advice.budget_bytes)} ({memory_text(advice.budget_bytes)})"
    table = Table(
        title=f"advise {advice.ref}, {advice.target}: predicted per setting",
        columns=(
            Column(header="jobs"),
            Column(header="lto"),
            Column(header="codegen units"),
            Column(header="peak"),
            Column(header="wall"),
            Column(header=f"fits {memory_text(usable)}"),
        ),
        rows=tuple(
            Row(
                cells=(
                    f"{c.jobs}{'*' if c.beyond_measured else ''}",
                    c.lto,
                    str(c.codegen_units),
                    memory_text(c.peak_bytes),
                    duration_text(c.wall_seconds),
                    _fits(c, advice),
                )
            )
            for c in advice.candidates
        ),
    )
    notes: list[str] = [choice_note] if choice_note else []
    notes.append(f"budget: {budget} less the {advice.margin_percent:g} % margin = {memory_text(usable)} usable")
    recommended = advice.recommended
    if recommended is not None:
        result = Result(
            name="fits-budget",
            status=Status.OK,
            group=f"advise.{advice.ref}",
            reason=(
                f"fastest that fits: {jobs_text(recommended.jobs)}, lto={recommended.lto}, codegen-units="
                f"{recommended.codegen_units}: peak {memory_text(recommended.peak_bytes)}, wall "
                f"{duration_text(recommended.wall_seconds)}"
            ),
        )
        notes += [
            f"recommended: {result.reason}",
            f"  build.sh:     {build_arg_line(recommended)}",
            f"  mas-harness:  {harness_build_line(recommended, advice.ref)}",
        ]
    else:
        lowest = advice.lowest_peak
        result = Result(
            name="fits-budget",
            status=Status.FAILED,
            group=f"advise.{advice.ref}",
            reason=(
                f"nothing fits under {memory_text(usable)}: the lowest predicted peak is "
                f"{memory_text(lowest.peak_bytes)} ({jobs_text(lowest.jobs)}, lto={lowest.lto}, codegen-units="
                f"{lowest.codegen_units})"
            ),
        )
        notes += [result.reason, f"  lowest peak:  {build_arg_line(lowest)}"]
    if any(c.beyond_measured for c in advice.candidates):
        notes.append("* more jobs than the traced machine's CPUs: a prediction beyond what was measured")
    notes += list(advice.notes)
    notes.append("the model, its assumptions and its known errors: docs/advise-model.md")
    data: dict[str, Any] = {
        "ref": advice.ref,
        "target": advice.target,
        "memory_budget_bytes": advice.budget_bytes,
        "margin_percent": advice.margin_percent,
        "usable_bytes": usable,
        "cpus": advice.cpus,
        "ref_choice": choice_note,
        "traces": [
            {
                "lto": source.lto,
                "codegen_units": source.codegen_units,
                "cost_trace": {
                    "ref": source.cost_trace.ref,
                    "source": source.cost_trace.source,
                    "jobs": source.cost_trace.settings.jobs,
                    "cpus": source.cost_trace.machine.cpus,
                },
                "calibration": None
                if source.calibration is None
                else {
                    "source": source.calibration.source,
                    "jobs": source.calibration.jobs,
                    "parallel_fraction": source.calibration.parallel_fraction,
                    "memory_per_worker": source.calibration.memory_per_worker,
                    "units": list(source.calibration.units),
                },
            }
            for source in advice.sources
        ],
        "candidates": [_candidate_json(c) for c in advice.candidates],
        "recommended": None if recommended is None else _candidate_json(recommended),
        "lowest_peak": _candidate_json(advice.lowest_peak),
        "build_arg_line": build_arg_line(recommended) if recommended is not None else None,
        "harness_build_line": harness_build_line(recommended, advice.ref) if recommended is not None else None,
        "notes": list(advice.notes),
    }
    return Outcome(
        command="advise",
        title=f"advise {advice.ref}",
        results=(result,),
        tables=(table,),
        notes=tuple(notes),
        data=data,
    )
