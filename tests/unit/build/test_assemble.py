"""trace.json assembled from the rustc wrapper's raw records: recorded ones of stand-in builds, and synthetic ones.

The recordings (tests/fixtures/trace/recorded-*) are the records.jsonl of two traced Docker builds of the
stand-in's v1.19.0 builder stage (a test double's build, not MAS's): the patch's defaults, and fat LTO
with one codegen unit. The synthetic records (`synthetic_record`) are test doubles made here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.build.assemble import (
    BuildFacts,
    Parsed,
    RawRecord,
    artifact_unit,
    assemble_trace,
    parse_records,
    record_of,
    trace_figures,
)
from harness.build.trace import Trace, dump_trace, load_trace
from tests.support import TRACE_RECORDINGS

RECORDINGS = TRACE_RECORDINGS


def _recording(name: str) -> tuple[Parsed, BuildFacts]:
    build = json.loads((RECORDINGS / f"recorded-standin-v1.19.0-{name}.build.json").read_text())
    facts = BuildFacts(
        ref=build["ref"],
        upstream_commit=build["upstream_commit"],
        source=build["source"],
        build_args=build["build_args"],
    )
    return parse_records((RECORDINGS / f"recorded-standin-v1.19.0-{name}.records.jsonl").read_bytes()), facts


def _assembled(name: str) -> Trace:
    parsed, facts = _recording(name)
    assembled = assemble_trace(parsed, facts=facts)
    assert assembled.problems == ()
    assert assembled.trace is not None
    return assembled.trace


def test_a_recorded_build_has_the_standins_units_in_the_order_they_started() -> None:
    trace = _assembled("low-ram")
    assert [(u.kind, u.crate) for u in trace.units] == [
        ("build-script", "mas_cli"),
        ("lib", "mas_standin_json"),
        ("build-script-run", "mas_cli"),
        ("bin", "mas_cli"),
    ]
    assert [u.id for u in trace.units] == [
        "mas_cli-d331e83b47001ab2",
        "mas_standin_json-2ed923b24eef6a9b",
        "mas_cli-14fb8e77303f4470",
        "mas_cli-637d8a353ed0fa0a",
    ]


def test_every_dep_of_a_recorded_build_is_a_unit_and_each_edge_is_cargos() -> None:
    trace = _assembled("low-ram")
    units = {u.kind: u for u in trace.units}
    assert units["build-script"].deps == ()
    assert units["build-script-run"].deps == (units["build-script"].id,), "a run waits for its compile"
    assert units["lib"].deps == ()
    # The binary waits for the library it links (--extern) and for its package's build-script run (OUT_DIR).
    assert units["bin"].deps == (units["lib"].id, units["build-script-run"].id)


def test_times_are_relative_to_the_first_start_and_the_last_unit_ends_the_wall() -> None:
    trace = _assembled("low-ram")
    assert trace.units[0].start == 0.0
    assert all(0 <= u.start <= u.end <= trace.wall_seconds for u in trace.units)
    assert trace.units[-1].end == trace.wall_seconds
    lib = trace.units[1]
    assert lib.metadata_ready is not None and lib.start < lib.metadata_ready < lib.end
    assert all(u.metadata_ready is None for u in trace.units if u.kind in ("bin", "build-script-run"))


def test_host_units_have_no_target_and_target_units_the_builds() -> None:
    trace = _assembled("low-ram")
    assert {u.kind: u.target for u in trace.units} == {
        "build-script": None,
        "build-script-run": None,
        "lib": "x86_64-unknown-linux-gnu",
        "bin": "x86_64-unknown-linux-gnu",
    }
    assert trace.target == "x86_64-unknown-linux-gnu"


def test_the_settings_are_what_rustc_ran_with() -> None:
    low_ram, fat = _assembled("low-ram"), _assembled("fat-lto")
    assert (low_ram.settings.jobs, low_ram.settings.lto, low_ram.settings.codegen_units) == (2, "off", 16)
    assert (fat.settings.jobs, fat.settings.lto, fat.settings.codegen_units) == (2, "fat", 1)
    final = fat.units[-1]
    assert (final.lto, final.codegen_units, final.opt_level) == ("fat", 1, "3"), "a bare -C lto is fat"
    assert low_ram.units[-1].lto is None, "cargo passes no -C lto for lto = false"


def test_the_build_is_named_as_it_was_given() -> None:
    trace = _assembled("fat-lto")
    _, facts = _recording("fat-lto")
    assert (trace.ref, trace.upstream_commit, trace.source) == (facts.ref, facts.upstream_commit, "standin")
    assert trace.build_args == dict(facts.build_args)


def test_memory_and_cpu_are_the_kernels_counts() -> None:
    trace = _assembled("low-ram")
    parsed, _ = _recording("low-ram")
    final = next(r for r in parsed.records if r.kind == "bin")
    assert trace.units[-1].peak_rss_bytes == final.maxrss_kib * 1024
    assert trace.units[-1].cpu_seconds == pytest.approx(final.cpu_seconds)
    hwm = max(r.parent_vm_hwm_kib or 0 for r in parsed.records if r.kind != "query")
    assert trace.cargo_peak_rss_bytes == hwm * 1024
    assert trace.machine.cpus == 2 and trace.machine.memory_bytes and trace.machine.loadavg_start is not None


@pytest.mark.parametrize("name", ["low-ram", "fat-lto"])
def test_an_assembled_trace_is_one_the_loader_reads_back(tmp_path: Path, name: str) -> None:
    trace = _assembled(name)
    path = tmp_path / "trace.json"
    path.write_bytes(dump_trace(trace))
    assert load_trace(path) == trace


def test_the_build_reports_figures_are_the_traces() -> None:
    trace = _assembled("fat-lto")
    figures = trace_figures(trace)
    heaviest = max((u for u in trace.units if u.kind != "build-script-run"), key=lambda u: u.peak_rss_bytes)
    assert figures["units"] == 4
    assert (figures["peak_rustc_crate"], figures["peak_rustc_rss_bytes"]) == (heaviest.crate, heaviest.peak_rss_bytes)
    assert figures["cargo_peak_rss_bytes"] == trace.cargo_peak_rss_bytes


# -- synthetic records (test doubles) -------------------------------------------------------------------------------

FACTS = BuildFacts(ref="v0.0.0", upstream_commit=None, source="path", build_args={})


def synthetic_record(**fields: Any) -> dict[str, Any]:
    """A record as the wrapper writes one, of a lib `a` unless `fields` say otherwise (a test double)."""
    record: dict[str, Any] = {
        "v": 1,
        "mode": "rustc",
        "kind": "lib",
        "pid": 10,
        "argv": [],
        "crate_name": "a",
        "pkg_name": "a",
        "target": "x86_64-unknown-linux-gnu",
        "out_dir": "/t/release/deps",
        "out_dir_env": None,
        "extra_filename": "-aaaa",
        "externs": [],
        "start": 100.0,
        "end": 101.0,
        "metadata_ready": 100.5,
        "exit_code": 0,
        "maxrss_kib": 1000,
        "user_seconds": 0.5,
        "system_seconds": 0.25,
        "parent_vm_hwm_kib": 2000,
        "cpus_allowed": 8,
        "memory_bytes": 1 << 34,
        "loadavg_start": [0.5, 0.25, 0.125],
        "loadavg_end": [1.5, 0.5, 0.25],
    }
    return record | fields


def _assemble(*records: dict[str, Any]) -> tuple[Trace | None, tuple[str, ...]]:
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    assembled = assemble_trace(parse_records(data), facts=FACTS)
    return assembled.trace, assembled.problems


def test_an_extern_no_traced_unit_made_is_a_problem_not_a_dangling_dep() -> None:
    trace, problems = _assemble(
        synthetic_record(),
        synthetic_record(
            pid=11,
            crate_name="b",
            extra_filename="-bbbb",
            externs=["a=/t/deps/liba-aaaa.rmeta", "z=/t/deps/libz-ffff.rlib"],
        ),
    )
    assert trace is not None
    assert trace.units[1].deps == ("a-aaaa",)
    assert problems == ("b-bbbb: --extern z=/t/deps/libz-ffff.rlib names no traced unit",)


def test_an_extern_of_the_sysroot_is_no_dep() -> None:
    trace, problems = _assemble(synthetic_record(kind="proc-macro", externs=["proc_macro"]))
    assert trace is not None and trace.units[0].deps == () and problems == ()


def test_a_build_script_run_without_its_compile_is_a_problem() -> None:
    trace, problems = _assemble(
        synthetic_record(
            mode="run",
            kind="build-script-run",
            crate_name=None,
            out_dir_env="/t/release/build/a-cccc/out",
            program="/t/release/build/a-dddd/build_script_build-dddd.mas-harness-real",
        )
    )
    assert trace is not None and trace.units[0].id == "a-cccc"
    assert problems == ("a-cccc: ran /t/release/build/a-dddd/build_script_build-dddd, which no traced rustc compiled",)


def test_a_unit_whose_out_dir_no_run_filled_is_a_problem() -> None:
    _, problems = _assemble(synthetic_record(out_dir_env="/t/release/build/a-cccc/out"))
    assert problems == ("a-aaaa: OUT_DIR /t/release/build/a-cccc/out was filled by no traced build-script run",)


def test_queries_and_tests_are_no_units_and_records_without_units_make_no_trace() -> None:
    trace, problems = _assemble(synthetic_record(kind="query", crate_name=None), synthetic_record(kind="test"))
    assert trace is None
    assert problems == ("the records hold no rustc unit and no build-script run",)


def test_records_that_do_not_say_where_the_build_ran_make_no_trace() -> None:
    trace, problems = _assemble(synthetic_record(loadavg_end=None))
    assert trace is None
    assert problems == ("the records do not say the build machine's CPUs, memory and load",)


def test_the_machine_is_the_first_units_at_the_start_and_the_last_ones_at_the_end() -> None:
    trace, _ = _assemble(
        synthetic_record(start=200.0, end=203.0, loadavg_end=[3.0, 2.0, 1.0], pid=11),
        synthetic_record(crate_name="b", extra_filename="-bbbb", loadavg_start=[0.0, 0.0, 0.0]),
    )
    assert trace is not None
    assert (trace.machine.cpus, trace.machine.memory_bytes) == (8, 1 << 34)
    assert (trace.machine.loadavg_start, trace.machine.loadavg_end) == ((0.0, 0.0, 0.0), (3.0, 2.0, 1.0))
    assert trace.wall_seconds == 103.0


def test_a_line_that_is_not_a_record_is_a_problem_and_the_rest_still_count() -> None:
    data = (json.dumps(synthetic_record()) + "\n" + '{"mode": "rustc", "kind": "lib", "start": "soon"}\n').encode()
    data += b'{"truncated'
    parsed = parse_records(data)
    assert [r.crate_name for r in parsed.records] == ["a"]
    assert len(parsed.problems) == 2 and parsed.problems[0].startswith("records line 2 is not a record")


def test_a_unit_recorded_twice_keeps_both_under_distinct_ids() -> None:
    trace, problems = _assemble(synthetic_record(), synthetic_record(pid=12, start=102.0, end=103.0))
    assert trace is not None and [u.id for u in trace.units] == ["a-aaaa", "a-aaaa-pid12"]
    assert problems == ("a-aaaa: recorded twice (pids 10 and 12)",)


def test_an_unshimmed_build_script_is_a_problem() -> None:
    _, problems = _assemble(
        synthetic_record(kind="build-script", crate_name="build_script_build", shim_error="cannot move it aside")
    )
    assert problems == ("a-aaaa: build script left unshimmed (cannot move it aside)",)


@pytest.mark.parametrize(
    ("spelling", "lto"),
    [("fat", "fat"), ("yes", "fat"), ("on", "fat"), ("true", "fat"), ("thin", "thin"), ("off", "off"), ("no", "off")],
)
def test_every_spelling_of_lto_is_one_of_three(spelling: str, lto: str) -> None:
    trace, _ = _assemble(synthetic_record(kind="bin", lto=spelling, codegen_units="1"))
    assert trace is not None and trace.units[0].lto == lto and trace.settings.lto == lto


@pytest.mark.parametrize(
    ("path", "unit"),
    [
        ("/t/deps/libtokio-1a2b3c.rlib", "tokio-1a2b3c"),
        ("/t/deps/libtokio-1a2b3c.rmeta", "tokio-1a2b3c"),
        ("/t/deps/libserde_derive-4d5e.so", "serde_derive-4d5e"),
        ("/t/deps/libfoo_bar-00ff.a", "foo_bar-00ff"),
        ("/t/deps/notanartifact", None),
    ],
)
def test_an_extern_file_names_its_unit(path: str, unit: str | None) -> None:
    assert artifact_unit(path) == unit


def test_a_record_keeps_what_the_wrapper_measured() -> None:
    record: RawRecord = record_of(synthetic_record())
    assert (record.cpu_seconds, record.maxrss_kib, record.cpus) == (0.75, 1000, 8)
