"""The compile step, shown while a build runs: a rich progress bar on a terminal, else a plain line now and then.

Crates come from BuildKit's progress stream (harness.build.progress_stream), counted against
the packages the build's Cargo.lock lists; memory comes from the build's own sampler
(harness.build.sampler), the one whose samples the report is made of, read at each refresh.
Where stderr is not a terminal (CI, a log file) a line is printed every 30 s or every 50
crates, whichever comes first, and once at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from harness.build.progress_stream import CompileState, advance
from harness.build.sampler import Sample
from harness.human import duration_text, memory_text

PLAIN_EVERY_SECONDS = 30.0
PLAIN_EVERY_CRATES = 50
_STEP_WIDTH = 90


class LatestSample(Protocol):
    def latest(self) -> Sample | None: ...

    def compiling(self) -> tuple[str, ...]: ...


def _packages(count: int | None) -> str:
    if count is None:
        return "an unknown number of packages"
    return f"{count} package" + ("" if count == 1 else "s")


def _short(text: str, width: int = _STEP_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _crates(names: Sequence[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" +{more}" if more > 0 else "")


def doing(state: CompileState, compiling: Sequence[str] = ()) -> str:
    """What the build is busy with, in a few words.

    `compiling` are the crates the sampler saw rustc compile last; without them, the last
    package cargo announced, which can be minutes stale: cargo says "Compiling" once per
    package, when its build script starts, not when its library or binary does.
    """
    if state.cached:
        return "compile step cached: nothing to compile"
    if state.failed:
        return "compile step failed"
    if state.finished:
        return "compiled"
    if state.compile_step is not None:
        if compiling:
            return f"compiling {_crates(compiling)}"
        return f"compiling {state.current}" if state.current else "compile step started"
    return _short(state.step_name) if state.step_name else "starting"


def doing_of(state: CompileState, total: int | None, compiling: Sequence[str] = ()) -> str:
    """`doing`, and at the end why fewer crates than the lock's packages is a whole build."""
    now = doing(state, compiling)
    if state.finished and not state.failed and total is not None and 0 < state.compiled < total:
        # The lock lists every platform's and feature's packages; a finished build that compiled fewer is complete.
        now += f" (the other {total - state.compiled} packages of Cargo.lock are not needed for this target)"
    return now


def status_line(  # noqa: PLR0913  # the figures of one line; keyword-only
    title: str,
    state: CompileState,
    *,
    elapsed: float,
    total: int | None,
    sample: Sample | None,
    compiling: Sequence[str] = (),
) -> str:
    """The plain line: crates out of the lock's packages, time, the build's rustc+cargo RSS now, and what it does."""
    crates = f"{state.compiled}/{total if total is not None else '?'} crates"
    rss = memory_text(sample.rss_bytes) if sample is not None else "n/a"
    return f"{title}: {crates}, {duration_text(elapsed)}, rustc+cargo RSS {rss}, {doing_of(state, total, compiling)}"


class PlainCadence:
    """Whether a plain line is due: `seconds` since the last one, or `crates` more crates, whichever comes first."""

    def __init__(self, *, seconds: float = PLAIN_EVERY_SECONDS, crates: int = PLAIN_EVERY_CRATES) -> None:
        self.seconds = seconds
        self.crates = crates
        self._last_time: float | None = None
        self._last_crates = 0

    def due(self, now: float, crates: int) -> bool:
        """The first call starts the clock; a call that answers yes starts it again."""
        if self._last_time is None:
            self._last_time = now
            return False
        if now - self._last_time >= self.seconds or crates - self._last_crates >= self.crates:
            self._last_time, self._last_crates = now, crates
            return True
        return False


class _RssColumn(ProgressColumn):
    """The build's rustc+cargo RSS as the sampler saw it last, read at every refresh."""

    def __init__(self, sampler: LatestSample) -> None:
        super().__init__()
        self.sampler = sampler

    def render(self, task: Task) -> Text:
        sample = self.sampler.latest()
        return Text(f"RSS {memory_text(sample.rss_bytes if sample else None)}", style="progress.data.speed")


class _DoingColumn(ProgressColumn):
    """What the build does, read at every refresh: the last stream line may be minutes old."""

    def __init__(self, progress: BuildProgress) -> None:
        super().__init__()
        self.progress = progress

    def render(self, task: Task) -> Text:
        return Text(self.progress.doing_now())


class BuildProgress:
    """Feed it the build's stream lines; use as a context manager around the build."""

    def __init__(  # noqa: PLR0913  # what is shown and how often; keyword-only
        self,
        console: Console,
        *,
        title: str,
        total_crates: int | None,
        sampler: LatestSample,
        quiet: bool = False,
        clock: Callable[[], float] = time.monotonic,
        cadence: PlainCadence | None = None,
        tick_seconds: float = 1.0,
    ) -> None:
        self.console = console
        self.title = title
        self.total = total_crates
        self.sampler = sampler
        self.quiet = quiet
        self.clock = clock
        self.cadence = cadence or PlainCadence()
        self.tick_seconds = tick_seconds
        """How often, off a terminal, the time since the last line is looked at (lines may not come for minutes)."""
        self.state = CompileState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = 0.0
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._ticker: threading.Thread | None = None

    @property
    def on_terminal(self) -> bool:
        return self.console.is_terminal

    def __enter__(self) -> BuildProgress:
        self._started = self.clock()
        if self.on_terminal:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("crates"),
                TimeElapsedColumn(),
                _RssColumn(self.sampler),
                _DoingColumn(self),
                console=self.console,
                refresh_per_second=4,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.title, total=self.total)
        elif not self.quiet:
            self._print(f"{self.title}: started; Cargo.lock lists {_packages(self.total)}")
            self.cadence.due(self._started, 0)
            self._ticker = threading.Thread(target=self._tick, name="build-progress", daemon=True)
            self._ticker.start()
        return self

    def feed(self, line: str) -> None:
        with self._lock:
            self.state = advance(self.state, line)
            state = self.state
        if self._bar is not None and self._task is not None:
            if state.cached or (state.finished and not state.compiled):
                self._bar.update(self._task, completed=self.total)
            else:
                # A finished bar is full at what was compiled: the lock's count is a ceiling, not the goal.
                total = state.compiled if state.finished else self.total
                self._bar.update(self._task, completed=state.compiled, total=total)
        elif self._ticker is not None:
            self._maybe_print()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._print(self._line())

    def _tick(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            self._maybe_print()

    def _maybe_print(self) -> None:
        with self._lock:
            due = self.cadence.due(self.clock(), self.state.compiled)
        if due:
            self._print(self._line())

    def doing_now(self) -> str:
        with self._lock:
            state = self.state
        return doing_of(state, self.total, self.sampler.compiling())

    def _line(self) -> str:
        with self._lock:
            state = self.state
        return status_line(
            self.title,
            state,
            elapsed=self.clock() - self._started,
            total=self.total,
            sample=self.sampler.latest(),
            compiling=self.sampler.compiling(),
        )

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)
