"""The in-build rustc wrapper, without Docker: compiled by the host's cc, run by the host's cargo on the stand-in.

What a traced build needs of it: cargo builds exactly what it builds without it (same binary,
same build-script output, the same diagnostics on stderr, the same failures), every rustc and
build-script run is one record, and the records assemble into a trace whose every dep resolves.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.build import tracer
from harness.build.assemble import BuildFacts, assemble_trace, parse_records
from harness.resources import standin_tree
from tests.support import unavailable

SOURCE = tracer.SOURCE_CONTEXT / tracer.SOURCE_FILE
CARGO_ARGS = ("build", "--release", "--locked", "--offline", "--features", "docker")


def test_the_wrappers_names_are_the_harnesss() -> None:
    """The C source and harness.build.tracer name the same environment variable, file, flag and suffix."""
    defines = dict(re.findall(r'^#define (\w+) "([^"]*)"$', SOURCE.read_text(), flags=re.MULTILINE))
    assert defines["TRACE_DIR_ENV"] == tracer.TRACE_DIR_ENV
    assert defines["RECORDS_FILE"] == tracer.RECORDS_FILE
    assert defines["RUN_FLAG"] == tracer.RUN_FLAG
    assert defines["REAL_SUFFIX"] == tracer.REAL_SUFFIX


@pytest.fixture(scope="module")
def wrapper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wrapper compiled as the build copy compiles it, with every warning an error."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        unavailable("no C compiler (cc) on PATH to compile the rustc wrapper with")
    out = tmp_path_factory.mktemp("wrapper") / "rustc-wrapper"
    compiled = subprocess.run(
        [cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o", str(out), str(SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compiled.returncode == 0, compiled.stderr
    return out


@dataclass(frozen=True)
class CargoRun:
    code: int
    stderr: str
    binary: Path
    records: Path | None


CargoBuild = Callable[..., CargoRun]


@pytest.fixture(scope="module")
def cargo_build(wrapper: Path, tmp_path_factory: pytest.TempPathFactory) -> CargoBuild:
    """`cargo build --release` of a copy of the stand-in, traced or not, with `edit` applied to the copy first."""
    cargo = shutil.which("cargo")
    if cargo is None:
        unavailable("no cargo on PATH: the wrapper is checked on the stand-in with the machine's own cargo")

    def build(
        *, traced: bool, edit: Callable[[Path], None] | None = None, env: Mapping[str, str] | None = None
    ) -> CargoRun:
        work = tmp_path_factory.mktemp("standin")
        tree = work / "standin"
        shutil.copytree(standin_tree(), tree)
        if edit is not None:
            edit(tree)
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO_PROFILE_", "RUSTC_WRAPPER"))}
        environment |= {"CARGO_TERM_COLOR": "never", "CARGO_BUILD_JOBS": "2", **(env or {})}
        records = None
        if traced:
            trace_dir = work / "trace"
            trace_dir.mkdir()
            environment |= {"RUSTC_WRAPPER": str(wrapper), tracer.TRACE_DIR_ENV: str(trace_dir)}
            records = trace_dir / tracer.RECORDS_FILE
        proc = subprocess.run(
            [cargo, *CARGO_ARGS], cwd=tree, env=environment, capture_output=True, text=True, check=False
        )
        return CargoRun(
            code=proc.returncode, stderr=proc.stderr, binary=tree / "target" / "release" / "mas-cli", records=records
        )

    return build


KNOBS = {"CARGO_PROFILE_RELEASE_LTO": "false", "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16"}


@pytest.fixture(scope="module")
def plain_and_traced(cargo_build: CargoBuild) -> tuple[CargoRun, CargoRun]:
    return cargo_build(traced=False, env=KNOBS), cargo_build(traced=True, env=KNOBS)


def _output(binary: Path, *args: str) -> str:
    return subprocess.run([binary, *args], capture_output=True, text=True, check=True).stdout


def test_the_traced_build_makes_the_same_binary(plain_and_traced: tuple[CargoRun, CargoRun]) -> None:
    plain, traced = plain_and_traced
    assert (plain.code, traced.code) == (0, 0), traced.stderr
    assert _output(traced.binary, "--version") == _output(plain.binary, "--version")
    # The build script ran (through the shim): build-info is what it recorded, as without the wrapper.
    assert json.loads(_output(traced.binary, "build-info")) == json.loads(_output(plain.binary, "build-info"))
    # The wrapper passes rustc its arguments untouched: the same compiler makes the very same bytes.
    assert traced.binary.read_bytes() == plain.binary.read_bytes()


def test_every_rustc_and_build_script_run_is_one_record(plain_and_traced: tuple[CargoRun, CargoRun]) -> None:
    _, traced = plain_and_traced
    assert traced.records is not None
    parsed = parse_records(traced.records.read_bytes())
    assert parsed.problems == ()
    units = sorted((r.kind, r.crate_name or r.pkg_name) for r in parsed.records if r.kind != "query")
    assert units == [
        ("bin", "mas_cli"),
        ("build-script", "build_script_build"),
        ("build-script-run", "mas-cli"),
        ("lib", "mas_standin_json"),
    ]
    by_kind = {r.kind: r for r in parsed.records}
    assert by_kind["bin"].codegen_units == "16" and by_kind["bin"].opt_level == "3"
    assert by_kind["lib"].metadata_ready is not None, "rustc's metadata notice was seen on its stderr"
    assert by_kind["lib"].start < by_kind["lib"].metadata_ready < by_kind["lib"].end
    assert by_kind["build-script-run"].num_jobs == "2"
    assert all(r.exit_code == 0 and r.maxrss_kib > 0 and r.end >= r.start for r in parsed.records)


def test_the_records_assemble_into_a_trace_whose_deps_resolve(plain_and_traced: tuple[CargoRun, CargoRun]) -> None:
    _, traced = plain_and_traced
    assert traced.records is not None
    facts = BuildFacts(ref=None, upstream_commit=None, source="standin", build_args=KNOBS)
    assembled = assemble_trace(parse_records(traced.records.read_bytes()), facts=facts)
    assert assembled.problems == ()
    trace = assembled.trace
    assert trace is not None
    ids = {unit.id for unit in trace.units}
    kinds = {unit.kind: unit for unit in trace.units}
    assert set(kinds) == {"lib", "bin", "build-script", "build-script-run"}
    assert all(dep in ids for unit in trace.units for dep in unit.deps)
    assert set(kinds["bin"].deps) == {kinds["lib"].id, kinds["build-script-run"].id}
    assert kinds["build-script-run"].deps == (kinds["build-script"].id,)
    assert trace.units[-1].end == max(unit.end for unit in trace.units) and trace.units[-1].kind == "bin"
    assert (trace.settings.jobs, trace.settings.lto, trace.settings.codegen_units) == (2, "off", 16)
    assert trace.cargo_peak_rss_bytes is not None and trace.cargo_peak_rss_bytes > 0
    assert all(unit.peak_rss_bytes > 0 and unit.start >= 0 for unit in trace.units)


def _warn(tree: Path) -> None:
    lib = tree / "crates" / "json" / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "\nfn standin_unused_helper() {}\n")


def test_rustcs_diagnostics_reach_cargo_unchanged(cargo_build: CargoBuild) -> None:
    plain, traced = cargo_build(traced=False, edit=_warn, env=KNOBS), cargo_build(traced=True, edit=_warn, env=KNOBS)
    assert (plain.code, traced.code) == (0, 0)

    def diagnostics(stderr: str) -> list[str]:
        # Cargo's own progress lines carry paths and times of their build; rustc's warning is the same text.
        return [line for line in stderr.splitlines() if not re.match(r"\s*(Compiling|Finished)\b", line)]

    assert "standin_unused_helper" in traced.stderr
    assert diagnostics(traced.stderr) == diagnostics(plain.stderr)


def _break(tree: Path) -> None:
    lib = tree / "crates" / "json" / "src" / "lib.rs"
    lib.write_text(lib.read_text() + "\nfn standin_broken( {}\n")


def test_a_failing_rustc_fails_the_build_as_without_the_wrapper_and_is_recorded(cargo_build: CargoBuild) -> None:
    plain, traced = cargo_build(traced=False, edit=_break, env=KNOBS), cargo_build(traced=True, edit=_break, env=KNOBS)
    assert plain.code == traced.code != 0
    assert "standin_broken" in traced.stderr
    assert traced.records is not None
    failed = [r for r in parse_records(traced.records.read_bytes()).records if r.exit_code != 0]
    assert [(r.kind, r.crate_name) for r in failed] == [("lib", "mas_standin_json")]


def test_the_wrapper_without_a_trace_directory_still_runs_rustc(wrapper: Path) -> None:
    rustc = shutil.which("rustc")
    if rustc is None:
        unavailable("no rustc on PATH")
    env = {k: v for k, v in os.environ.items() if k != tracer.TRACE_DIR_ENV}
    wrapped = subprocess.run([wrapper, rustc, "-vV"], capture_output=True, text=True, env=env, check=False)
    direct = subprocess.run([rustc, "-vV"], capture_output=True, text=True, check=False)
    assert (wrapped.returncode, wrapped.stdout) == (direct.returncode, direct.stdout)
