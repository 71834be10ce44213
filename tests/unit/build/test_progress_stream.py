"""Reading BuildKit's plain progress stream, on lines recorded from real builds (tests/fixtures/buildkit).

- mas-v1.19.0-builder.log: an excerpt (head, the first 133 `Compiling` lines, tail) of a full-source
  build of MAS v1.19.0's builder stage on this kind of machine;
- standin-v1.19.0-builder.log: a whole build of the stand-in (a test double of MAS);
- standin-v1.17.0-final-missing-binary.log: the final stage of v1.17.0 built with MAS_BUILD_TARGETS
  naming aarch64 only, which fails at the COPY of mas-cli-amd64;
- standin-v1.19.0-trace-export.log: the second build of a traced stand-in build, the one that exports the
  rustc wrapper's records (`--target mas-harness-trace --output type=local`), served from the layer cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build.progress_stream import (
    CompileState,
    StepLine,
    advance,
    failure_reason,
    lock_package_count,
    parse_line,
    replay,
)
from harness.resources import standin_tree
from tests.support import BUILDKIT_LOGS

RECORDED = BUILDKIT_LOGS


@pytest.fixture
def standin_lock() -> Path:
    return standin_tree() / "Cargo.lock"


def _lines(name: str) -> list[str]:
    return (RECORDED / name).read_text().splitlines(keepends=True)


@pytest.mark.parametrize(
    ("line", "step", "kind", "text"),
    [
        ("#11 [builder 6/7] RUN cargo auditable build\n", 11, "name", "[builder 6/7] RUN cargo auditable build"),
        ("#11 1167.9    Compiling symlink v0.1.0", 11, "output", "   Compiling symlink v0.1.0"),
        ("#11 DONE 1754.4s", 11, "done", "1754.4s"),
        ("#6 CACHED", 6, "cached", ""),
        ("#14 ERROR: process did not complete", 14, "error", "process did not complete"),
        ("#5 transferring context: 8.68MB 0.2s done", 5, "status", "transferring context: 8.68MB 0.2s done"),
        ("#12 exporting to image", 12, "name", "exporting to image"),
    ],
)
def test_lines_are_told_apart(line: str, step: int, kind: str, text: str) -> None:
    assert parse_line(line) == StepLine(step=step, kind=kind, text=text)  # type: ignore[arg-type]


@pytest.mark.parametrize("line", ["", "\n", "ERROR: failed to solve: something"])
def test_lines_of_no_step_are_none(line: str) -> None:
    assert parse_line(line) is None


def test_a_full_mas_build_is_counted_crate_by_crate() -> None:
    lines = _lines("mas-v1.19.0-builder.log")
    compile_at = next(i for i, line in enumerate(lines) if line.startswith("#11 [builder 6/7]"))
    before = replay(lines[:compile_at])
    assert before.compile_step is None, "`cargo install cargo-auditable` (cached here) is not the compile step"
    assert before.step_name == "[builder 5/7] COPY ./ /app"

    first_crate = next(i for i, line in enumerate(lines) if "Compiling" in line)
    midway = replay(lines[: first_crate + 3])
    assert (midway.compile_step, midway.compiled, midway.current) == (11, 3, "unicode-ident")
    assert midway.compiling

    state = replay(lines)
    assert state.compiled == 133, "every `Compiling` line of the excerpt, each crate version once"
    assert state.current == "listenfd"
    assert state.finished and not state.compiling and not state.failed and not state.cached
    assert state.step_name == "exporting to image"


def test_the_standin_build_compiles_one_crate() -> None:
    state = replay(_lines("standin-v1.19.0-builder.log"))
    assert (state.compiled, state.current, state.finished) == (1, "mas-cli", True)


def test_a_crate_built_for_the_host_and_the_target_counts_once() -> None:
    # Synthetic lines, in the recorded format: cargo names a build dependency twice when it cross-compiles.
    state = replay(
        [
            "#11 [builder 6/7] RUN cargo auditable build --target aarch64-unknown-linux-gnu\n",
            "#11 3.0    Compiling serde v1.0.210\n",
            "#11 9.0    Compiling serde v1.0.210\n",
            "#11 9.5    Compiling serde v1.0.190\n",
        ]
    )
    assert state.compiled == 2


def test_lines_of_other_steps_do_not_count() -> None:
    state = replay(
        [
            "#8 [builder 1/7] RUN cargo install --locked cargo-auditable@=0.7.2\n",
            "#11 [builder 6/7] RUN cargo auditable build --locked\n",
            "#8 12.0    Compiling cargo-auditable v0.7.2\n",
            "#8 DONE 40.0s\n",
            "#11 3.0    Compiling serde v1.0.210\n",
        ]
    )
    assert (state.compiled, state.current, state.finished) == (1, "serde", False)


def test_a_cached_or_failed_compile_step_ends_the_count() -> None:
    cached = replay(["#11 [builder 6/7] RUN cargo auditable build\n", "#11 CACHED\n"])
    assert cached.cached and not cached.compiling
    failed = advance(CompileState(compile_step=11), "#11 ERROR: process exited 101\n")
    assert failed.failed and not failed.compiling


def test_the_missing_binary_is_named_when_the_final_stage_fails() -> None:
    lines = _lines("standin-v1.17.0-final-missing-binary.log")
    assert failure_reason(lines) == "/usr/local/bin/mas-cli-amd64 not found"


def test_other_failures_give_buildkits_last_word() -> None:
    lines = ["#11 ERROR: process exited 101\n", "ERROR: failed to solve: process did not complete: exit code: 1\n"]
    assert failure_reason(lines) == "failed to solve: process did not complete: exit code: 1"
    assert failure_reason(["#1 DONE 0.0s\n"]) is None


def test_a_lock_files_packages_are_the_total(standin_lock: Path) -> None:
    assert lock_package_count(standin_lock.read_text()) == 2
    two = 'version = 4\n\n[[package]]\nname = "a"\nversion = "1.0.0"\n\n[[package]]\nname = "b"\nversion = "2.0.0"\n'
    assert lock_package_count(two) == 2
    assert lock_package_count("not = [toml") is None
    assert lock_package_count("version = 4\n") is None
