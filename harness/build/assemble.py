"""A build trace (harness.build.trace) assembled from the raw records the in-build rustc wrapper wrote.

Pure: `parse_records()` reads the JSON lines, `assemble_trace()` makes the units of the trace
from them, `trace_figures()` gives the figures a build report shows. The wrapper records each
rustc invocation and build-script run on its own; what ties them together is cargo's:

- a unit's id is its crate name and the hash cargo gives its files (`-C extra-filename`, which
  is also in every file name another unit's `--extern` names; `-C metadata` only when there
  is none). A build-script run's hash is that of the directory cargo runs it for (the parent
  of its OUT_DIR), its crate that of its package (CARGO_PKG_NAME);
- a unit's deps are the units whose files its `--extern` arguments name, and, when cargo gave
  it an OUT_DIR, the build-script run that filled that directory;
- a build-script run depends on the build-script compile whose binary it ran.

Cargo's own questions to rustc (`rustc -vV`, `--print`) and test builds are not units.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import cast

from harness import __version__
from harness.build.trace import (
    UNIT_KINDS,
    LtoMode,
    Trace,
    TraceMachine,
    TraceSettings,
    TraceSource,
    TraceUnit,
    UnitKind,
    lto_mode,
)
from harness.build.tracer import REAL_SUFFIX
from harness.errors import BadInput
from harness.knobs import CODEGEN_UNITS, JOBS, KNOB_DEFAULTS, LTO, requested_targets

UNKNOWN_CRATE = "unknown"
"""The crate of a record that names none (a rustc run without --crate-name and without a package)."""
RUSTC_DEFAULT_CODEGEN_UNITS = 16
"""What rustc uses when cargo passes no -C codegen-units (a non-incremental build)."""
_ARTIFACT = re.compile(r"^(?:lib)?(?P<crate>.+)-(?P<hash>[0-9a-f]+)(?:\.[A-Za-z0-9]+)+$")
"""A file cargo names after its unit: `libtokio-1a2b3c.rlib`, `libserde_derive-4d5e.so`, `mas_cli-6f7a`."""


@dataclass(frozen=True, kw_only=True)
class BuildFacts:
    """What the trace says about the build that the records do not: which build, of what, given what."""

    ref: str | None
    upstream_commit: str | None
    source: TraceSource
    build_args: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class RawRecord:
    """One line of the wrapper's records.jsonl: one rustc invocation or one build-script run."""

    mode: str
    """`rustc` or `run`."""
    kind: str
    pid: int
    argv: tuple[str, ...]
    crate_name: str | None
    pkg_name: str | None
    target: str | None
    out_dir: str | None
    """rustc's --out-dir."""
    out_dir_env: str | None
    """OUT_DIR in its environment: the directory of its package's build-script run."""
    codegen_units: str | None
    lto: str | None
    opt_level: str | None
    extra_filename: str | None
    metadata: str | None
    externs: tuple[str, ...]
    program: str | None
    """For a run: the build script's binary, moved aside."""
    start: float
    end: float
    metadata_ready: float | None
    exit_code: int
    maxrss_kib: int
    cpu_seconds: float
    parent_vm_hwm_kib: int | None
    num_jobs: str | None
    cpus: int | None
    memory_bytes: int | None
    loadavg_start: tuple[float, ...] | None
    loadavg_end: tuple[float, ...] | None
    shim_error: str | None = None


class MalformedRecord(ValueError):
    """A line of records.jsonl that is not a record the wrapper writes."""


def _opt_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _opt_int(data: Mapping[str, object], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(data: Mapping[str, object], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedRecord(f"{key!r} is {value!r}, not a number")
    return float(value)


def _loadavg(data: Mapping[str, object], key: str) -> tuple[float, ...] | None:
    value = data.get(key)
    if isinstance(value, list) and all(isinstance(v, int | float) for v in value):
        return tuple(float(v) for v in value)
    return None


def _strings(data: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = data.get(key)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def record_of(data: object) -> RawRecord:
    """One record, as the wrapper wrote it (a JSON object); MalformedRecord when it is not one."""
    if not isinstance(data, dict):
        raise MalformedRecord("not a JSON object")
    mode, kind = data.get("mode"), data.get("kind")
    if mode not in ("rustc", "run") or not isinstance(kind, str):
        raise MalformedRecord(f"mode {mode!r}, kind {kind!r}")
    metadata_ready = data.get("metadata_ready")
    return RawRecord(
        mode=str(mode),
        kind=kind,
        pid=_opt_int(data, "pid") or 0,
        argv=_strings(data, "argv"),
        crate_name=_opt_str(data, "crate_name"),
        pkg_name=_opt_str(data, "pkg_name"),
        target=_opt_str(data, "target"),
        out_dir=_opt_str(data, "out_dir"),
        out_dir_env=_opt_str(data, "out_dir_env"),
        codegen_units=_opt_str(data, "codegen_units"),
        lto=_opt_str(data, "lto"),
        opt_level=_opt_str(data, "opt_level"),
        extra_filename=_opt_str(data, "extra_filename"),
        metadata=_opt_str(data, "metadata"),
        externs=_strings(data, "externs"),
        program=_opt_str(data, "program"),
        start=_number(data, "start"),
        end=_number(data, "end"),
        metadata_ready=_number(data, "metadata_ready") if metadata_ready is not None else None,
        exit_code=int(_number(data, "exit_code")),
        maxrss_kib=int(_number(data, "maxrss_kib")),
        cpu_seconds=_number(data, "user_seconds") + _number(data, "system_seconds"),
        parent_vm_hwm_kib=_opt_int(data, "parent_vm_hwm_kib"),
        num_jobs=_opt_str(data, "num_jobs_env"),
        cpus=_opt_int(data, "cpus_allowed") or _opt_int(data, "cpus_online"),
        memory_bytes=_opt_int(data, "memory_bytes"),
        loadavg_start=_loadavg(data, "loadavg_start"),
        loadavg_end=_loadavg(data, "loadavg_end"),
        shim_error=_opt_str(data, "shim_error"),
    )


@dataclass(frozen=True, kw_only=True)
class Parsed:
    records: tuple[RawRecord, ...]
    problems: tuple[str, ...] = ()


def parse_records(data: bytes) -> Parsed:
    """The records of records.jsonl, in the order they were written; a line that is not one is a problem."""
    records: list[RawRecord] = []
    problems: list[str] = []
    for number, line in enumerate(data.decode(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(record_of(json.loads(line)))
        except (ValueError, MalformedRecord) as exc:
            problems.append(f"records line {number} is not a record of the wrapper ({exc})")
    return Parsed(records=tuple(records), problems=tuple(problems))


# -- units ---------------------------------------------------------------------------------------------------------


def _crate_of_package(record: RawRecord) -> str:
    return (record.pkg_name or record.crate_name or UNKNOWN_CRATE).replace("-", "_")


def _file_hash(record: RawRecord) -> str:
    if record.extra_filename:
        return record.extra_filename.lstrip("-")
    return record.metadata or f"pid{record.pid}"


def artifact_unit(path: str) -> str | None:
    """The unit id a file cargo made is named after (`…/deps/libtokio-1a2b.rmeta` -> `tokio-1a2b`)."""
    found = _ARTIFACT.match(PurePosixPath(path).name)
    return f"{found.group('crate')}-{found.group('hash')}" if found else None


def unit_id(record: RawRecord) -> str:
    if record.kind == "build-script-run":
        run_dir = PurePosixPath(record.out_dir_env or "").parent.name
        return f"{_crate_of_package(record)}-{run_dir.rpartition('-')[2] or f'pid{record.pid}'}"
    crate = _crate_of_package(record) if record.kind == "build-script" else record.crate_name or UNKNOWN_CRATE
    return f"{crate}-{_file_hash(record)}"


def _build_script_binary(record: RawRecord) -> str | None:
    """Where rustc put a build script it compiled: what the run's program was before the wrapper moved it."""
    if record.out_dir is None or record.crate_name is None:
        return None
    return f"{record.out_dir}/{record.crate_name}{record.extra_filename or ''}"


def _lto(value: str | None) -> LtoMode | None:
    """rustc's -C lto value as an LTO mode (the wrapper records a bare `-C lto` as `fat`); None when not passed."""
    if value is None:
        return None
    try:
        return lto_mode("fat" if value.lower() == "on" else value)  # rustc's one spelling cargo's profile lacks
    except BadInput:
        return None


def _codegen_units(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


@dataclass(frozen=True, kw_only=True)
class Assembled:
    trace: Trace | None
    problems: tuple[str, ...] = ()
    """Records the trace could not place: a dangling --extern, a run without its compile, a malformed line."""


def _deps(
    record: RawRecord,
    *,
    own: str,
    known: set[str],
    runs_by_out_dir: Mapping[str, str],
    scripts_by_binary: Mapping[str, str],
) -> tuple[list[str], list[str]]:
    """The unit ids `record` waited for, and what it names that no traced unit made."""
    deps: list[str] = []
    missing: list[str] = []
    if record.kind == "build-script-run":
        binary = (record.program or "").removesuffix(REAL_SUFFIX)
        script = scripts_by_binary.get(binary)
        if script is None:
            missing.append(f"{own}: ran {binary}, which no traced rustc compiled")
        else:
            deps.append(script)
        return deps, missing
    for extern in record.externs:
        _, eq, path = extern.partition("=")
        if not eq:
            continue  # `--extern proc_macro`: the sysroot's, no unit of the build
        dep = artifact_unit(path)
        if dep in known:
            deps.append(dep)
        else:
            missing.append(f"{own}: --extern {extern} names no traced unit")
    if record.out_dir_env is not None:
        run = runs_by_out_dir.get(record.out_dir_env)
        if run is None:
            missing.append(f"{own}: OUT_DIR {record.out_dir_env} was filled by no traced build-script run")
        else:
            deps.append(run)
    return list(dict.fromkeys(deps)), missing


def _final_binary(units: Sequence[RawRecord]) -> RawRecord | None:
    """The binary unit that finished last: the one LTO and the codegen units of the release profile apply to."""
    return max((r for r in units if r.kind == "bin"), key=lambda r: r.end, default=None)


def _settings(units: Sequence[RawRecord], build_args: Mapping[str, str], *, cpus: int) -> TraceSettings:
    """The knobs as the build really ran them: the last binary's rustc flags, cargo's NUM_JOBS to build scripts.

    Without a binary (a build that made none) the build args say, then cargo's and rustc's defaults.
    """
    final = _final_binary(units)
    jobs_seen = next((r.num_jobs for r in units if r.kind == "build-script-run" and r.num_jobs), None)
    jobs_text = jobs_seen or build_args.get(JOBS) or ""
    if final is not None:
        lto = _lto(final.lto) or "off"
        codegen_units = _codegen_units(final.codegen_units)
    else:
        lto = _lto(build_args.get(LTO, KNOB_DEFAULTS[LTO])) or "off"
        codegen_units = _codegen_units(build_args.get(CODEGEN_UNITS))
    return TraceSettings(
        jobs=int(jobs_text) if jobs_text.isdigit() and int(jobs_text) > 0 else cpus,
        lto=lto,
        codegen_units=codegen_units or RUSTC_DEFAULT_CODEGEN_UNITS,
    )


def _machine(first: RawRecord, last: RawRecord) -> TraceMachine | None:
    if first.cpus is None or first.memory_bytes is None:
        return None
    if first.loadavg_start is None or last.loadavg_end is None:
        return None
    if len(first.loadavg_start) != 3 or len(last.loadavg_end) != 3:
        return None
    start, end = first.loadavg_start, last.loadavg_end
    return TraceMachine(
        cpus=first.cpus,
        memory_bytes=first.memory_bytes,
        loadavg_start=(start[0], start[1], start[2]),
        loadavg_end=(end[0], end[1], end[2]),
    )


def _target(units: Sequence[RawRecord], build_args: Mapping[str, str]) -> str:
    """What the build compiled for: the last binary's --target, else any target unit's, else what was asked."""
    final = _final_binary(units)
    if final is not None and final.target:
        return final.target
    return next((r.target for r in units if r.target), None) or requested_targets(build_args)[0]


def assemble_trace(parsed: Parsed, *, facts: BuildFacts) -> Assembled:
    """The trace of the build these records are of; None (and why) when they hold no unit."""
    problems = list(parsed.problems)
    units = sorted((r for r in parsed.records if r.kind in UNIT_KINDS), key=lambda r: (r.start, r.end))
    if not units:
        return Assembled(trace=None, problems=(*problems, "the records hold no rustc unit and no build-script run"))
    first, last = units[0], max(units, key=lambda r: r.end)
    machine = _machine(first, last)
    if machine is None:
        return Assembled(
            trace=None, problems=(*problems, "the records do not say the build machine's CPUs, memory and load")
        )
    problems += [f"{unit_id(r)}: build script left unshimmed ({r.shim_error})" for r in units if r.shim_error]
    ids: list[str] = []
    for record in units:
        wanted = unit_id(record)
        if wanted in ids:
            problems.append(f"{wanted}: recorded twice (pids {units[ids.index(wanted)].pid} and {record.pid})")
            wanted = f"{wanted}-pid{record.pid}"
        ids.append(wanted)
    known = set(ids)
    runs_by_out_dir = {
        r.out_dir_env: own for r, own in zip(units, ids, strict=True) if r.kind == "build-script-run" and r.out_dir_env
    }
    scripts_by_binary = {
        binary: own
        for r, own in zip(units, ids, strict=True)
        if r.kind == "build-script" and (binary := _build_script_binary(r)) is not None
    }
    t0 = first.start
    made: list[TraceUnit] = []
    for record, own in zip(units, ids, strict=True):
        deps, missing = _deps(
            record, own=own, known=known, runs_by_out_dir=runs_by_out_dir, scripts_by_binary=scripts_by_binary
        )
        problems += missing
        made.append(
            TraceUnit(
                id=own,
                crate=_crate_of_package(record)
                if record.kind.startswith("build-script")
                else record.crate_name or UNKNOWN_CRATE,
                kind=cast(UnitKind, record.kind),
                target=record.target,
                start=round(record.start - t0, 6),
                end=round(record.end - t0, 6),
                metadata_ready=round(record.metadata_ready - t0, 6)
                if record.metadata_ready is not None and record.kind != "bin"
                else None,
                peak_rss_bytes=record.maxrss_kib * 1024,
                cpu_seconds=round(record.cpu_seconds, 6),
                codegen_units=_codegen_units(record.codegen_units),
                lto=_lto(record.lto),
                opt_level=record.opt_level,
                deps=tuple(deps),
                exit_code=record.exit_code,
            )
        )
    hwm = [r.parent_vm_hwm_kib for r in units if r.parent_vm_hwm_kib is not None]
    trace = Trace(
        harness_version=__version__,
        ref=facts.ref,
        upstream_commit=facts.upstream_commit,
        source=facts.source,
        target=_target(units, facts.build_args),
        settings=_settings(units, facts.build_args, cpus=machine.cpus),
        build_args=dict(facts.build_args),
        machine=machine,
        wall_seconds=round(last.end - t0, 6),
        cargo_peak_rss_bytes=max(hwm) * 1024 if hwm else None,
        units=tuple(made),
    )
    return Assembled(trace=trace, problems=tuple(problems))


# -- figures for a build report ------------------------------------------------------------------------------------


def trace_figures(trace: Trace) -> dict[str, object]:
    """What a build report shows of its trace, beside the sampler's figures."""
    rustc = [u for u in trace.units if u.kind != "build-script-run"]
    heaviest = max(rustc, key=lambda u: u.peak_rss_bytes, default=None)
    runs = [u for u in trace.units if u.kind == "build-script-run"]
    return {
        "units": len(trace.units),
        "wall_seconds": trace.wall_seconds,
        "peak_rustc_unit": heaviest.id if heaviest else None,
        "peak_rustc_crate": heaviest.crate if heaviest else None,
        "peak_rustc_rss_bytes": heaviest.peak_rss_bytes if heaviest else None,
        "peak_build_script_run_rss_bytes": max((u.peak_rss_bytes for u in runs), default=None),
        "cargo_peak_rss_bytes": trace.cargo_peak_rss_bytes,
    }
