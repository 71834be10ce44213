"""The compile step's progress as users see it: a rich bar on a terminal, a plain line now and then in a log.

The build is replayed from lines recorded from a real full-source build (tests/fixtures/buildkit); the
sampler and the clock are test doubles (RecordedSamples, SteppedClock), so nothing here is timed.
"""

from __future__ import annotations

import io

from rich.console import Console

from harness.build.progress import BuildProgress, PlainCadence, doing, status_line
from harness.build.progress_stream import CompileState
from harness.build.sampler import Sample
from tests.support import BUILDKIT_LOGS

RECORDED = BUILDKIT_LOGS / "mas-v1.19.0-builder.log"
GB = 1_000_000_000


class RecordedSamples:
    """Test double of the build's ProcessSampler: hands out the sample it is given as the latest."""

    def __init__(self, rss_bytes: int | None, compiling: tuple[str, ...] = ()) -> None:
        self.sample = None if rss_bytes is None else Sample(t=1.0, rss_bytes=rss_bytes, rustc=1, cargo=1)
        self.crates = compiling

    def latest(self) -> Sample | None:
        return self.sample

    def compiling(self) -> tuple[str, ...]:
        return self.crates


class SteppedClock:
    """Test double of time.monotonic: moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_cadence_is_every_30_seconds_or_50_crates_whichever_first() -> None:
    cadence = PlainCadence(seconds=30.0, crates=50)
    assert not cadence.due(0.0, 0), "the first call starts the clock"
    assert not cadence.due(29.0, 49)
    assert cadence.due(30.0, 49), "30 s"
    assert not cadence.due(31.0, 60)
    assert cadence.due(32.0, 99), "50 crates since the last line"
    assert not cadence.due(61.0, 100)
    assert cadence.due(62.0, 100)


def test_the_plain_line_says_crates_time_memory_and_what_is_compiled() -> None:
    state = CompileState(compile_step=11, crates=frozenset({("serde", "1.0.0"), ("quote", "1.0.44")}), current="serde")
    line = status_line("v1.19.0 builder", state, elapsed=95.4, total=702, sample=RecordedSamples(1_230_000_000).sample)
    assert line == "v1.19.0 builder: 2/702 crates, 1m35s, rustc+cargo RSS 1.23 GB, compiling serde"
    assert status_line("x", CompileState(), elapsed=3, total=None, sample=None) == (
        "x: 0/? crates, 3s, rustc+cargo RSS n/a, starting"
    )
    assert doing(CompileState(step_name="[builder 3/7] RUN apt-get update")) == "[builder 3/7] RUN apt-get update"
    assert doing(CompileState(compile_step=11, cached=True)) == "compile step cached: nothing to compile"


def test_off_a_terminal_a_line_comes_every_50_crates_and_at_the_end() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=80)
    clock = SteppedClock()
    lines = RECORDED.read_text().splitlines(keepends=True)
    # The ticker (which looks at the clock while no line comes) is set never to fire: the test moves the clock.
    samples = RecordedSamples(2 * GB)
    with BuildProgress(
        console, title="v1.19.0 builder", total_crates=702, sampler=samples, clock=clock, tick_seconds=1e6
    ) as progress:
        for line in lines:
            progress.feed(line)
        clock.now += 120
    printed = out.getvalue().splitlines()
    assert printed[0] == "v1.19.0 builder: started; Cargo.lock lists 702 packages"
    assert printed[1:3] == [
        "v1.19.0 builder: 50/702 crates, 0s, rustc+cargo RSS 2.00 GB, compiling zerovec",
        "v1.19.0 builder: 100/702 crates, 0s, rustc+cargo RSS 2.00 GB, compiling num-traits",
    ]
    assert printed[-1] == (
        "v1.19.0 builder: 133/702 crates, 2m00s, rustc+cargo RSS 2.00 GB, compiled "
        "(the other 569 packages of Cargo.lock are not needed for this target)"
    )
    assert len(printed) == 4, "one line per 50 crates, one at the end: lines are never wrapped or repeated"


def test_off_a_terminal_a_quiet_build_prints_nothing() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with BuildProgress(console, title="t", total_crates=1, sampler=RecordedSamples(None), quiet=True) as progress:
        progress.feed("#11 [builder 6/7] RUN cargo auditable build\n")
    assert out.getvalue() == ""


def test_on_a_terminal_the_bar_shows_crates_memory_and_the_crate() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    lines = RECORDED.read_text().splitlines(keepends=True)
    first_crate = next(i for i, line in enumerate(lines) if "Compiling" in line)
    with BuildProgress(console, title="v1.19.0 builder", total_crates=702, sampler=RecordedSamples(3 * GB)) as bar:
        for line in lines[: first_crate + 10]:
            bar.feed(line)
    shown = out.getvalue()
    assert "v1.19.0 builder" in shown
    assert "10/702" in shown
    assert "crates" in shown
    assert "RSS 3.00 GB" in shown
    assert "compiling " in shown


def test_a_finished_bar_is_full_at_the_crates_compiled_and_says_why_not_the_locks_count() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=250, color_system=None)
    lines = RECORDED.read_text().splitlines(keepends=True)
    with BuildProgress(console, title="v1.19.0 builder", total_crates=702, sampler=RecordedSamples(GB)) as bar:
        for line in lines:
            bar.feed(line)
    last = [line for line in out.getvalue().splitlines() if "crates" in line][-1]
    assert "133/133 crates" in last
    assert "compiled (the other 569 packages of Cargo.lock are not needed for this target)" in last


def test_what_rustc_compiles_now_comes_from_the_sampler_not_cargos_last_line() -> None:
    """cargo announces mas-cli when its build script starts; its binary compiles minutes later, unannounced."""
    state = CompileState(compile_step=11, crates=frozenset({("listenfd", "1.0.2")}), current="listenfd")
    samples = RecordedSamples(GB, compiling=("mas_cli",))
    line = status_line("b", state, elapsed=60, total=702, sample=samples.sample, compiling=samples.compiling())
    assert line.endswith("compiling mas_cli")
    assert doing(state) == "compiling listenfd", "without the sampler, cargo's last line"
    assert doing(state, ("a", "b", "c", "d", "e")) == "compiling a, b, c +2"

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200, color_system=None)
    with BuildProgress(console, title="b", total_crates=702, sampler=samples) as bar:
        bar.feed("#11 [builder 6/7] RUN cargo auditable build\n")
        bar.feed("#11 12.3    Compiling listenfd v1.0.2\n")
        assert bar.doing_now() == "compiling mas_cli"
    assert "compiling mas_cli" in out.getvalue()
