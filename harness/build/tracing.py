"""The in-build trace taken out of the build, wherever it ran, and written as trace.json beside the build's report.

The rustc wrapper (harness.build.tracer) wrote its records into the builder stage's layer.
A second `buildx build` of the same build copy, with the same inputs, for the stage that
holds the records alone (`--target mas-harness-trace --output type=local`), is served from
the layer cache and copies them into the report directory: it asks nothing of the machine the
build ran on but BuildKit itself, so a remote builder gives them up as the local one does. If
the build step was not served from the cache (the cache was pruned in between), the records
would be of another build: that is refused, never reported.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerException, docker

from harness.build.assemble import Assembled, BuildFacts, assemble_trace, parse_records, trace_figures
from harness.build.plan import BuildPlan
from harness.build.progress_stream import failure_reason, replay
from harness.build.trace import TRACE_FILE, dump_trace
from harness.build.tracer import RECORDS_FILE, TRACE_STAGE
from harness.files import atomic_write

log = logging.getLogger("harness")

RECORDS_COPY = "trace-records.jsonl"
"""The wrapper's raw records, as exported, kept beside trace.json."""
EXPORT_LOG = "trace-export.log"


class TraceUnavailable(Exception):
    """The records could not be taken out of the build, or are not this build's."""


@dataclass(frozen=True, kw_only=True)
class TraceOutcome:
    """What became of a traced build's trace: the file, or why there is none."""

    file: Path | None
    records_file: Path | None
    error: str | None = None
    problems: tuple[str, ...] = ()
    """What the assembly could not place (an --extern of a unit compiled by no traced rustc, say)."""
    figures: dict[str, object] | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> TraceOutcome:
        """As `as_json` wrote it (a profile.json read back)."""
        file, records, error, problems = (data.get(key) for key in ("file", "records_file", "error", "problems"))
        own = {"file", "records_file", "error", "problems"}
        return cls(
            file=Path(file) if isinstance(file, str) else None,
            records_file=Path(records) if isinstance(records, str) else None,
            error=error if isinstance(error, str) else None,
            problems=tuple(str(p) for p in problems) if isinstance(problems, list) else (),
            figures={key: value for key, value in data.items() if key not in own} or None,
        )

    def as_json(self) -> dict[str, object]:
        return {
            "file": str(self.file) if self.file else None,
            "records_file": str(self.records_file) if self.records_file else None,
            "error": self.error,
            "problems": list(self.problems),
            **(self.figures or {}),
        }


def build_step_cached(lines: Iterable[str]) -> bool:
    """Whether the export's stream says the build step came from the layer cache (as it must: else it ran again)."""
    state = replay(lines)
    return state.compile_step is None or state.cached


def export_records(plan: BuildPlan, *, dockerfile: Path, log_path: Path) -> bytes:
    """The raw records of `plan`'s build, from its layers: the build step must come from the layer cache."""
    lines: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="mas-harness-trace-") as out,
        log_path.open("w", encoding="utf-8") as log_file,
    ):
        try:
            stream = docker.buildx.build(
                plan.context,
                file=dockerfile,
                target=TRACE_STAGE,
                build_args=plan.build_args,
                build_contexts=plan.build_contexts,
                output={"type": "local", "dest": out},
                progress="plain",
                provenance=False,
                builder=plan.builder,
                stream_logs=True,
            )
            for line in stream:  # type: ignore[union-attr]  # stream_logs=True gives an iterator
                log_file.write(line if line.endswith("\n") else line + "\n")
                lines.append(line)
        except DockerException as exc:
            reason = failure_reason(lines)
            raise TraceUnavailable(
                f"exporting the trace records failed (exit {exc.return_code})" + (f": {reason}" if reason else "")
            ) from None
        if not build_step_cached(lines):
            raise TraceUnavailable(
                "the build step ran again to export the trace (the layer cache no longer held it): its records "
                "would be of another build"
            )
        records = Path(out) / RECORDS_FILE
        if not records.is_file():
            raise TraceUnavailable(f"the build left no {RECORDS_FILE}: the rustc wrapper recorded nothing")
        return records.read_bytes()


def collect_trace(plan: BuildPlan, *, facts: BuildFacts, dockerfile: Path, report_dir: Path) -> TraceOutcome:
    """Export the records of `plan`'s (successful) build, keep them, and write trace.json beside the report."""
    try:
        raw = export_records(plan, dockerfile=dockerfile, log_path=report_dir / EXPORT_LOG)
    except TraceUnavailable as exc:
        return TraceOutcome(file=None, records_file=None, error=str(exc))
    records_file = report_dir / RECORDS_COPY
    atomic_write(records_file, raw)
    assembled: Assembled = assemble_trace(parse_records(raw), facts=facts)
    if assembled.trace is None:
        return TraceOutcome(file=None, records_file=records_file, error="; ".join(assembled.problems))
    trace_file = report_dir / TRACE_FILE
    atomic_write(trace_file, dump_trace(assembled.trace))
    log.info("trace: %s (%d units)", trace_file, len(assembled.trace.units))
    return TraceOutcome(
        file=trace_file,
        records_file=records_file,
        problems=assembled.problems,
        figures=trace_figures(assembled.trace),
    )
