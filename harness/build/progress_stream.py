"""Reading BuildKit's plain progress stream: its steps, cargo's lines in the compile step, and why a build failed.

buildx 0.13 has no machine-readable progress (`--progress rawjson` came later), so the
plain stream is read. Every line of a step starts with `#<n> `; the step's first line
names it (`#11 [builder 6/7] RUN ... cargo auditable build ...`), its output lines carry
the seconds since it started (`#11 12.3    Compiling serde v1.0.210`), and it ends with
`#11 DONE 12.9s`, `#11 CACHED` or `#11 ERROR: ...`. Steps run in parallel, so their lines
interleave; the number says whose a line is.

Everything here is pure: `advance(state, line)` returns the state after one line, so the
display (harness.build.progress) and the tests feed it recorded lines alike.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

_STEP_LINE = re.compile(r"^#(\d+) (.*)$")
_OUTPUT = re.compile(r"^\d+\.\d+ (.*)$")
_COMPILING = re.compile(r"^\s*Compiling (\S+) v(\S+)")
_FINISHED = re.compile(r"^\s*Finished ")
_NOT_FOUND = re.compile(r'"(/[^"]+)": not found')
COMPILE_COMMANDS = ("cargo auditable build", "cargo build")
"""A step whose name holds one of these is the compile step (not `cargo install cargo-auditable`)."""

LineKind = Literal["name", "output", "done", "cached", "error", "status"]


@dataclass(frozen=True, kw_only=True)
class StepLine:
    step: int
    kind: LineKind
    text: str
    """The step's name, a line of its output, or what follows DONE/ERROR."""


def parse_line(line: str) -> StepLine | None:
    """One line of the plain stream, or None for what belongs to no step (blank lines, buildx's summary)."""
    match = _STEP_LINE.match(line.rstrip("\n"))
    if match is None:
        return None
    kind, text = _classify(match.group(2))
    return StepLine(step=int(match.group(1)), kind=kind, text=text)


def _classify(rest: str) -> tuple[LineKind, str]:
    if rest.startswith("[") or rest == "exporting to image":
        return "name", rest
    if rest == "CACHED":
        return "cached", ""
    if rest.startswith("DONE "):
        return "done", rest.removeprefix("DONE ")
    if rest.startswith("ERROR:"):
        return "error", rest.removeprefix("ERROR:").strip()
    output = _OUTPUT.match(rest)
    # Anything else is BuildKit's own status of a step: `transferring context: 335B done`, `naming to ...`.
    return ("output", output.group(1)) if output else ("status", rest)


@dataclass(frozen=True, kw_only=True)
class CompileState:
    """What the stream has said so far about the build, the compile step foremost."""

    step_name: str | None = None
    """The step named last: what the build is doing while it has not reached the compile step."""
    compile_step: int | None = None
    crates: frozenset[tuple[str, str]] = frozenset()
    """(name, version) of every crate cargo said it is compiling (a crate built for the host and the target once)."""
    current: str | None = None
    """The crate cargo named last."""
    finished: bool = False
    cached: bool = False
    """The compile step came from the layer cache: nothing was compiled."""
    failed: bool = False

    @property
    def compiled(self) -> int:
        return len(self.crates)

    @property
    def compiling(self) -> bool:
        return self.compile_step is not None and not (self.finished or self.cached or self.failed)


def is_compile_step(name: str) -> bool:
    return any(command in name for command in COMPILE_COMMANDS)


def advance(state: CompileState, line: str) -> CompileState:
    """The state after one more line of the stream."""
    parsed = parse_line(line)
    if parsed is None:
        return state
    if parsed.kind == "name":
        compile_step = parsed.step if is_compile_step(parsed.text) else state.compile_step
        return dataclasses.replace(state, step_name=parsed.text, compile_step=compile_step)
    if parsed.step != state.compile_step:
        return state
    return _compile_step_line(state, parsed)


def _compile_step_line(state: CompileState, parsed: StepLine) -> CompileState:
    if parsed.kind != "output":
        return dataclasses.replace(
            state,
            cached=state.cached or parsed.kind == "cached",
            failed=state.failed or parsed.kind == "error",
            finished=state.finished or parsed.kind == "done",
        )
    compiling = _COMPILING.match(parsed.text)
    if compiling is not None:
        name, version = compiling.groups()
        return dataclasses.replace(state, crates=state.crates | {(name, version)}, current=name)
    if _FINISHED.match(parsed.text):
        return dataclasses.replace(state, finished=True)
    return state


def replay(lines: Iterable[str], state: CompileState | None = None) -> CompileState:
    """The state after these lines, from `state` or from the start of a build."""
    current = state or CompileState()
    for line in lines:
        current = advance(current, line)
    return current


def lock_package_count(cargo_lock: str) -> int | None:
    """How many packages a Cargo.lock lists: what a cold build compiles at most (None: not a lock file).

    Cargo compiles fewer (a lock also lists the packages of other platforms and features)
    and may compile one twice (for the host and for the target).
    """
    try:
        packages = tomllib.loads(cargo_lock).get("package")
    except tomllib.TOMLDecodeError:
        return None
    return len(packages) if isinstance(packages, list) else None


def failure_reason(lines: Iterable[str]) -> str | None:
    """Why the build failed, as BuildKit said it last: its final `ERROR:` line, without the plumbing around it.

    A COPY of a file the source stage lacks reads `... failed to calculate checksum of ref
    ...: "/usr/local/bin/mas-cli-amd64": not found`; that comes out as the path not found.
    """
    last = None
    for line in lines:
        text = line.strip()
        if text.startswith("ERROR:"):
            last = text.removeprefix("ERROR:").strip()
        else:
            step = parse_line(text)
            if step is not None and step.kind == "error":
                last = step.text
    if last is None:
        return None
    missing = _NOT_FOUND.search(last)
    if missing is not None:
        return f"{missing.group(1)} not found"
    return last
