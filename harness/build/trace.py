"""A build trace (`trace.json`, schema version 1): every unit cargo ran, when, how heavy, and what it waited for.

The one place the trace's names live. The producer (the in-build wrapper's records, assembled
after a build) builds these dataclasses and writes `dump_trace`'s bytes through harness.files;
every consumer (the schedule simulator, `advise`, a remote builder's report) reads a trace only
through `load_trace`. docs/trace.md documents every field.

The loader refuses, in one line, anything the simulator could not replay faithfully: a file that
is not a regular file or is far larger than any build's trace, not JSON, another `kind`, a
`schema_version` it does not know, a missing or mistyped field, a duplicate id, a dependency on a
unit that is not in the file, or dependencies that form a cycle. Unknown extra fields are ignored,
so that version 1 can grow fields without breaking older readers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

from harness.errors import BadInput
from harness.files import read_input

SCHEMA_VERSION = 1
"""The trace schema this module reads and writes; it changes only when a field changes meaning."""
TRACE_KIND = "mas-harness-build-trace"
"""The `kind` every trace carries, so that another JSON file (a report, a profile) is never read as one."""
TRACE_FILE = "trace.json"
"""The name a trace has in a report directory."""
MAX_TRACE_BYTES = 32 * 2**20
"""A full MAS build has about 700 units, a few hundred bytes each: a few hundred KB. Far past that is not a trace."""

UnitKind = Literal["lib", "bin", "proc-macro", "build-script", "build-script-run"]
UNIT_KINDS: tuple[UnitKind, ...] = get_args(UnitKind)
LtoMode = Literal["off", "thin", "fat"]
"""LTO as cargo's profile asks for it: `off` stands for cargo's `lto = false` too (rustc's thin-local LTO)."""
LTO_MODES: tuple[LtoMode, ...] = get_args(LtoMode)
TraceSource = Literal["full", "standin", "path"]
"""What was built: a full MAS source tree, the stand-in workspace, or a local context the user named."""
TRACE_SOURCES: tuple[TraceSource, ...] = get_args(TraceSource)


@dataclass(frozen=True, kw_only=True)
class TraceSettings:
    """The knobs the build ran with, as cargo saw them."""

    jobs: int
    lto: LtoMode
    codegen_units: int


@dataclass(frozen=True, kw_only=True)
class TraceMachine:
    """Where the build ran: its CPUs and memory, and how loaded it was before and after."""

    cpus: int
    memory_bytes: int
    loadavg_start: tuple[float, float, float]
    loadavg_end: tuple[float, float, float]


@dataclass(frozen=True, kw_only=True)
class TraceUnit:
    """One rustc invocation (or one build-script run) cargo scheduled."""

    id: str
    """The crate name and cargo's metadata hash (`-C extra-filename`): unique within a build."""
    crate: str
    kind: UnitKind
    target: str | None
    """The Rust triple it was built for; None for a host unit (a proc-macro, a build script)."""
    start: float
    end: float
    metadata_ready: float | None
    """When rustc announced the `.rmeta` (pipelining lets lib dependents start then); None for bins and runs."""
    peak_rss_bytes: int
    """The largest single process of the unit's tree at exit (rustc, or the linker it waited for)."""
    cpu_seconds: float
    codegen_units: int | None
    """`-C codegen-units` as rustc ran it; None when not passed (rustc's default)."""
    lto: LtoMode | None
    """`-C lto` as rustc ran it; None when not passed."""
    opt_level: str | None
    deps: tuple[str, ...]
    """The ids of the units this one waited for."""
    exit_code: int

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, kw_only=True)
class Trace:
    schema_version: int = SCHEMA_VERSION
    kind: str = TRACE_KIND
    harness_version: str
    ref: str | None
    upstream_commit: str | None
    source: TraceSource
    target: str
    settings: TraceSettings
    build_args: Mapping[str, str] = field(default_factory=dict)
    machine: TraceMachine
    wall_seconds: float
    """First unit start to last unit end."""
    cargo_peak_rss_bytes: int | None
    """cargo's own high-water mark (VmHWM) as last read, None when unknown."""
    units: tuple[TraceUnit, ...]


# -- reading ---------------------------------------------------------------------------------------


def load_trace(path: Path) -> Trace:
    """The trace in `path`, checked; anything else is refused in one line (BadInput)."""
    data = _read_bounded(path)
    try:
        document = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadInput(f"trace {path} is nested too deeply to be a build trace") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both are
        raise BadInput(f"trace {path} is not JSON: {_one_line(exc)}") from None
    return parse_trace(document, shown=str(path))


def parse_trace(document: object, *, shown: str = "trace") -> Trace:
    """A trace from its decoded JSON document (what `load_trace` reads from a file)."""
    where = f"trace {shown}" if shown != "trace" else "trace"
    if not isinstance(document, dict):
        raise BadInput(f"{where} is a JSON {_json_type(document)}, not a build trace object")
    kind = document.get("kind")
    if kind != TRACE_KIND:
        raise BadInput(f"{where} is not a build trace: its kind is {kind!r}, not {TRACE_KIND!r}")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise BadInput(
            f"{where} has schema_version {version!r}; this harness reads version {SCHEMA_VERSION}: "
            "upgrade mas-patch-harness or take the trace again"
        )
    try:
        trace = _trace(_Fields(document, ""))
    except _FieldError as exc:
        raise BadInput(f"{where}: {exc}") from None
    _check_graph(trace, where)
    return trace


class _FieldError(Exception):
    pass


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _read_bounded(path: Path) -> bytes:
    data = read_input(path, "trace", limit=MAX_TRACE_BYTES)
    if data is None:
        raise BadInput(f"trace {path} does not exist")
    return data


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


_T = TypeVar("_T")


class _Fields:
    """The fields of one JSON object, read with their types checked; errors name the field's path."""

    def __init__(self, data: Mapping[str, Any], prefix: str) -> None:
        self.data = data
        self.prefix = prefix

    def _name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def _get(self, key: str) -> object:
        if key not in self.data:
            raise _FieldError(f"field {self._name(key)} is missing")
        return self.data[key]

    def _wrong(self, key: str, value: object, wanted: str) -> _FieldError:
        return _FieldError(f"field {self._name(key)} is {_json_type(value)} {_short(value)}, not {wanted}")

    def text(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise self._wrong(key, value, "a non-empty string")
        return value

    def optional_text(self, key: str) -> str | None:
        return None if self._get(key) is None else self.text(key)

    def integer(self, key: str, *, minimum: int = 0) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._wrong(key, value, f"an integer >= {minimum}")
        return value

    def optional_integer(self, key: str, *, minimum: int = 0) -> int | None:
        return None if self._get(key) is None else self.integer(key, minimum=minimum)

    def signed(self, key: str) -> int:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, value, "an integer")
        return value

    def number(self, key: str) -> float:
        value = self._get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise self._wrong(key, value, "a number >= 0")
        return float(value)

    def optional_number(self, key: str) -> float | None:
        return None if self._get(key) is None else self.number(key)

    def choice(self, key: str, choices: tuple[_T, ...]) -> _T:
        value = self._get(key)
        if value not in choices or not isinstance(value, str):
            raise self._wrong(key, value, "one of " + ", ".join(map(str, choices)))
        return cast(_T, value)

    def optional_choice(self, key: str, choices: tuple[_T, ...]) -> _T | None:
        return None if self._get(key) is None else self.choice(key, choices)

    def obj(self, key: str) -> _Fields:
        value = self._get(key)
        if not isinstance(value, dict):
            raise self._wrong(key, value, "an object")
        return _Fields(value, f"{self._name(key)}.")

    def array(self, key: str) -> list[object]:
        value = self._get(key)
        if not isinstance(value, list):
            raise self._wrong(key, value, "an array")
        return value

    def texts(self, key: str) -> tuple[str, ...]:
        values = self.array(key)
        for index, value in enumerate(values):
            if not isinstance(value, str) or not value:
                raise _FieldError(f"field {self._name(key)}[{index}] is {_json_type(value)}, not a unit id")
        return tuple(cast(list[str], values))

    def loadavg(self, key: str) -> tuple[float, float, float]:
        values = self.array(key)
        if len(values) != 3 or any(
            isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0 for v in values
        ):
            raise self._wrong(key, values, "three numbers >= 0 (1, 5 and 15 minutes)")
        return (float(values[0]), float(values[1]), float(values[2]))  # type: ignore[arg-type]

    def string_map(self, key: str) -> dict[str, str]:
        value = self.obj(key).data
        for name, item in value.items():
            if not isinstance(item, str):
                raise _FieldError(f"field {self._name(key)}.{name} is {_json_type(item)}, not a string")
        return dict(value)

    def each(self, key: str, read: Callable[[_Fields], _T]) -> tuple[_T, ...]:
        found: list[_T] = []
        for index, value in enumerate(self.array(key)):
            if not isinstance(value, dict):
                raise _FieldError(f"field {self._name(key)}[{index}] is {_json_type(value)}, not an object")
            found.append(read(_Fields(value, f"{self._name(key)}[{index}].")))
        return tuple(found)


def _short(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _trace(fields: _Fields) -> Trace:
    settings = fields.obj("settings")
    machine = fields.obj("machine")
    return Trace(
        harness_version=fields.text("harness_version"),
        ref=fields.optional_text("ref"),
        upstream_commit=fields.optional_text("upstream_commit"),
        source=fields.choice("source", TRACE_SOURCES),
        target=fields.text("target"),
        settings=TraceSettings(
            jobs=settings.integer("jobs", minimum=1),
            lto=settings.choice("lto", LTO_MODES),
            codegen_units=settings.integer("codegen_units", minimum=1),
        ),
        build_args=fields.string_map("build_args"),
        machine=TraceMachine(
            cpus=machine.integer("cpus", minimum=1),
            memory_bytes=machine.integer("memory_bytes"),
            loadavg_start=machine.loadavg("loadavg_start"),
            loadavg_end=machine.loadavg("loadavg_end"),
        ),
        wall_seconds=fields.number("wall_seconds"),
        cargo_peak_rss_bytes=fields.optional_integer("cargo_peak_rss_bytes"),
        units=fields.each("units", _unit),
    )


def _unit(fields: _Fields) -> TraceUnit:
    unit = TraceUnit(
        id=fields.text("id"),
        crate=fields.text("crate"),
        kind=fields.choice("kind", UNIT_KINDS),
        target=fields.optional_text("target"),
        start=fields.number("start"),
        end=fields.number("end"),
        metadata_ready=fields.optional_number("metadata_ready"),
        peak_rss_bytes=fields.integer("peak_rss_bytes"),
        cpu_seconds=fields.number("cpu_seconds"),
        codegen_units=fields.optional_integer("codegen_units", minimum=1),
        lto=fields.optional_choice("lto", LTO_MODES),
        opt_level=fields.optional_text("opt_level"),
        deps=fields.texts("deps"),
        exit_code=fields.signed("exit_code"),
    )
    # A replay needs time to run forward within a unit: a producer's clock error shows here, not as a bogus peak.
    if unit.end < unit.start:
        raise _FieldError(f"unit {unit.id} ends ({unit.end:g} s) before it starts ({unit.start:g} s)")
    if unit.metadata_ready is not None and not unit.start <= unit.metadata_ready <= unit.end:
        raise _FieldError(
            f"unit {unit.id}'s metadata_ready ({unit.metadata_ready:g} s) is outside its run "
            f"({unit.start:g}-{unit.end:g} s)"
        )
    return unit


def _check_graph(trace: Trace, where: str) -> None:
    """Unique ids, every dep a unit of the file, no cycle: what a schedule replay needs."""
    deps: dict[str, tuple[str, ...]] = {}
    for unit in trace.units:
        if unit.id in deps:
            raise BadInput(f"{where}: unit id {unit.id} appears twice")
        deps[unit.id] = unit.deps
    for unit in trace.units:
        for dep in unit.deps:
            if dep not in deps:
                raise BadInput(f"{where}: unit {unit.id} depends on {dep}, which is not a unit of the trace")
    # Iterative depth-first search: a long dependency chain must not hit Python's recursion limit.
    done: set[str] = set()
    for root in deps:
        if root in done:
            continue
        on_path: set[str] = {root}
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack[-1]
            if index < len(deps[node]):
                stack[-1] = (node, index + 1)
                child = deps[node][index]
                if child in on_path:
                    raise BadInput(f"{where}: the dependencies of unit {child} form a cycle")
                if child not in done:
                    on_path.add(child)
                    stack.append((child, 0))
            else:
                stack.pop()
                on_path.discard(node)
                done.add(node)


# -- writing ---------------------------------------------------------------------------------------


def trace_document(trace: Trace) -> dict[str, object]:
    """The trace as its JSON document, fields in the order docs/trace.md lists them."""
    return {
        "schema_version": trace.schema_version,
        "kind": trace.kind,
        "harness_version": trace.harness_version,
        "ref": trace.ref,
        "upstream_commit": trace.upstream_commit,
        "source": trace.source,
        "target": trace.target,
        "settings": {
            "jobs": trace.settings.jobs,
            "lto": trace.settings.lto,
            "codegen_units": trace.settings.codegen_units,
        },
        "build_args": dict(trace.build_args),
        "machine": {
            "cpus": trace.machine.cpus,
            "memory_bytes": trace.machine.memory_bytes,
            "loadavg_start": list(trace.machine.loadavg_start),
            "loadavg_end": list(trace.machine.loadavg_end),
        },
        "wall_seconds": trace.wall_seconds,
        "cargo_peak_rss_bytes": trace.cargo_peak_rss_bytes,
        "units": [_unit_document(unit) for unit in trace.units],
    }


def _unit_document(unit: TraceUnit) -> dict[str, object]:
    return {
        "id": unit.id,
        "crate": unit.crate,
        "kind": unit.kind,
        "target": unit.target,
        "start": unit.start,
        "end": unit.end,
        "metadata_ready": unit.metadata_ready,
        "peak_rss_bytes": unit.peak_rss_bytes,
        "cpu_seconds": unit.cpu_seconds,
        "codegen_units": unit.codegen_units,
        "lto": unit.lto,
        "opt_level": unit.opt_level,
        "deps": list(unit.deps),
        "exit_code": unit.exit_code,
    }


def dump_trace(trace: Trace) -> bytes:
    """The bytes of `trace.json` (UTF-8, one field a line, a final newline); callers write them via harness.files.

    Refuses (ValueError) a trace `load_trace` would refuse, so that no writer produces a file no reader accepts.
    """
    document = trace_document(trace)
    try:
        parse_trace(document)
    except BadInput as exc:
        raise ValueError(f"refusing to write an invalid trace: {exc}") from None
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def lto_mode(value: str) -> LtoMode:
    """The LTO mode a `CARGO_PROFILE_RELEASE_LTO` value (or a Cargo.toml `lto`) asks for."""
    mode = _LTO_VALUES.get(value.strip().strip('"').lower())
    if mode is None:
        raise BadInput(f"{value!r} is not an LTO setting cargo knows (false, true, off, thin, fat)")
    return mode


_LTO_VALUES: Mapping[str, LtoMode] = {
    "false": "off",
    "off": "off",
    "no": "off",
    "n": "off",
    "true": "fat",
    "fat": "fat",
    "yes": "fat",
    "y": "fat",
    "thin": "thin",
}
