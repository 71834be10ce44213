"""trace.json: what the loader accepts, what it refuses in one line, and that dump and load are inverses."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.build.trace import MAX_TRACE_BYTES, TRACE_KIND, Trace, dump_trace, load_trace, lto_mode, parse_trace
from harness.errors import BadInput
from tests.support.traces import synthetic_trace, synthetic_unit, trace_json, write_synthetic_trace


def _two_units() -> Trace:
    return synthetic_trace(
        [
            synthetic_unit("serde-1", start=0.0, end=2.0, metadata_ready=1.0),
            synthetic_unit("mas_cli-2", kind="bin", start=2.0, end=5.0, deps=["serde-1"]),
        ]
    )


def test_a_dumped_trace_loads_back_equal(tmp_path: Path) -> None:
    trace = _two_units()
    assert load_trace(write_synthetic_trace(tmp_path / "trace.json", trace)) == trace


def test_unknown_extra_fields_are_ignored(tmp_path: Path) -> None:
    document = trace_json(_two_units())
    document["future_field"] = {"anything": 1}
    document["units"][0]["also_new"] = [1, 2]  # type: ignore[index]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(document))
    assert load_trace(path) == _two_units()


Breaker = Callable[[dict[str, Any]], object]


def _set(key: str, value: object) -> Breaker:
    return lambda d: d.__setitem__(key, value)


def _unit_set(index: int, key: str, value: object) -> Breaker:
    return lambda d: d["units"][index].__setitem__(key, value)


REFUSED: dict[str, tuple[Breaker, str]] = {
    "another kind": (_set("kind", "mas-harness-profile"), "is not a build trace: its kind is 'mas-harness-profile'"),
    "no kind": (lambda d: d.pop("kind"), "its kind is None"),
    "a future schema": (_set("schema_version", 2), "has schema_version 2; this harness reads version 1"),
    "a boolean schema": (_set("schema_version", True), "has schema_version True"),
    "a missing field": (lambda d: d.pop("wall_seconds"), "field wall_seconds is missing"),
    "a missing unit field": (lambda d: d["units"][1].pop("deps"), "field units[1].deps is missing"),
    "a mistyped field": (_unit_set(0, "start", "0"), 'field units[0].start is string "0", not a number >= 0'),
    "a boolean count": (lambda d: d["settings"].__setitem__("jobs", True), "field settings.jobs is boolean"),
    "zero jobs": (lambda d: d["settings"].__setitem__("jobs", 0), "field settings.jobs is number 0"),
    "an unknown kind of unit": (_unit_set(0, "kind", "test"), "field units[0].kind is string"),
    "an unknown lto": (lambda d: d["settings"].__setitem__("lto", "true"), "field settings.lto is string"),
    "a duplicate id": (_unit_set(1, "id", "serde-1"), "unit id serde-1 appears twice"),
    "a dangling dep": (_unit_set(1, "deps", ["tokio-9"]), "unit mas_cli-2 depends on tokio-9, which is not a unit"),
    "a cycle": (_unit_set(0, "deps", ["mas_cli-2"]), "form a cycle"),
    "a unit ending before it starts": (_unit_set(1, "end", 1.0), "ends (1 s) before it starts (2 s)"),
    "metadata after the end": (_unit_set(0, "metadata_ready", 3.0), "metadata_ready (3 s) is outside its run"),
    "a non-string build arg": (lambda d: d["build_args"].__setitem__("X", 1), "field build_args.X is number"),
    "a short loadavg": (lambda d: d["machine"].__setitem__("loadavg_end", [1]), "field machine.loadavg_end"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_malformed_trace_is_refused_in_one_line(case: str, tmp_path: Path) -> None:
    breaker, expected = REFUSED[case]
    document = trace_json(_two_units())
    breaker(document)
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(document))
    with pytest.raises(BadInput) as caught:
        load_trace(path)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message and message.startswith(f"trace {path}")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{not json", "is not JSON"),
        (b"\xff\xfe\x00garbage", "is not JSON"),
        (b'{"kind": "' + TRACE_KIND.encode() + b'", "x": NaN}', "is not JSON: NaN is not a JSON number"),
        (b"[1, 2]", "is a JSON array, not a build trace object"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_a_file_that_is_not_a_trace_is_refused(content: bytes, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=expected):
        load_trace(path)


def test_a_directory_a_pipe_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a regular file"):
        load_trace(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="not a regular file"):
        load_trace(fifo)
    with pytest.raises(BadInput, match="does not exist"):
        load_trace(tmp_path / "absent.json")


def test_a_file_past_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    with path.open("wb") as handle:
        handle.truncate(MAX_TRACE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(BadInput, match="more than the"):
        load_trace(path)


def test_dump_refuses_a_trace_no_reader_would_accept() -> None:
    broken = synthetic_trace([synthetic_unit("a-1", start=0, end=1, deps=["ghost-2"])])
    with pytest.raises(ValueError, match="depends on ghost-2"):
        dump_trace(broken)


@pytest.mark.parametrize(
    ("value", "mode"), [("false", "off"), ("off", "off"), ("true", "fat"), ("fat", "fat"), ("thin", "thin")]
)
def test_cargo_lto_values_map_to_the_traces_modes(value: str, mode: str) -> None:
    assert lto_mode(value) == mode


def test_an_unknown_lto_value_is_bad_input() -> None:
    with pytest.raises(BadInput, match="not an LTO setting"):
        lto_mode("maybe")


_times = st.floats(min_value=0, max_value=1e5, allow_nan=False)


@given(st.lists(st.tuples(_times, _times, st.integers(0, 2**40)), min_size=1, max_size=12))
def test_any_valid_chain_of_units_survives_a_round_trip(spans: list[tuple[float, float, int]]) -> None:
    units = []
    for index, (a, b, rss) in enumerate(spans):
        start, end = min(a, b), max(a, b)
        deps = [f"u-{index - 1}"] if index else []
        units.append(synthetic_unit(f"u-{index}", start=start, end=end, peak_rss_bytes=rss, deps=deps))
    trace = synthetic_trace(units)
    assert parse_trace(json.loads(dump_trace(trace))) == trace
