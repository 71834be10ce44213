"""Taking the trace out of a build: the export is trusted only when the layer cache served the build step.

On BuildKit progress streams recorded from real builds (tests/fixtures/buildkit): the export of a traced
stand-in build, and a whole stand-in build whose compile step ran.
"""

from __future__ import annotations

from harness.build.tracing import TraceOutcome, build_step_cached
from tests.support import BUILDKIT_LOGS


def _lines(name: str) -> list[str]:
    return (BUILDKIT_LOGS / name).read_text().splitlines(keepends=True)


def test_an_export_served_from_the_layer_cache_is_trusted() -> None:
    assert build_step_cached(_lines("standin-v1.19.0-trace-export.log"))


def test_an_export_whose_build_step_ran_again_is_not() -> None:
    # A build step that ran (cargo compiled) would have written the records of another build than the one measured.
    assert not build_step_cached(_lines("standin-v1.19.0-builder.log"))


def test_a_trace_outcome_reads_back_as_it_was_written() -> None:
    outcome = TraceOutcome(
        file=None, records_file=None, error="the build failed", problems=("a-1: --extern z names no traced unit",)
    )
    assert TraceOutcome.from_json(outcome.as_json()) == outcome
    assert not outcome.ok
