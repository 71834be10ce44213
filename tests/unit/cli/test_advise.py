"""`mas-harness advise` from the command line, on synthetic traces (test doubles): exits, one-line errors, JSON,
the plot, the shipped-trace lookup, and no build stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.build.advice import shipped_trace_name
from harness.build.trace import Trace
from harness.cli.main import main
from tests.support.traces import GB, synthetic_trace, synthetic_unit, trace_json, write_synthetic_trace

BUILD_STACK = ["python_on_whales", "testcontainers", "psutil", "matplotlib"]


def synthetic_release(ref: str = "v1.19.0", *, jobs: int = 1) -> Trace:
    """A lib of 1 GB and a bin of 3 GB linking it, as a one-job build records them."""
    return synthetic_trace(
        [
            synthetic_unit("core-1", start=0, end=60, metadata_ready=20, peak_rss_bytes=GB),
            synthetic_unit("mas_cli-1", kind="bin", start=60, end=300, deps=["core-1"], peak_rss_bytes=3 * GB),
        ],
        ref=ref,
        jobs=jobs,
    )


@pytest.fixture
def trace_file(tmp_path: Path) -> Path:
    return write_synthetic_trace(tmp_path / "trace.json", synthetic_release())


def _harness(*argv: str, blocked: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGV` (the console entry), with `blocked` modules made unimportable."""
    code = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({blocked or []!r}))\n"  # a None entry makes the import fail
        "import runpy\n"
        f"sys.argv = ['mas-harness', *{list(argv)!r}]\n"
        "runpy.run_module('harness', run_name='__main__')\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)


def test_advise_needs_none_of_the_build_stack(trace_file: Path) -> None:
    """As installed without the `build` extra, and with no engine."""
    done = _harness(
        "advise", "--memory", "16G", "--cpus", "2", "--trace", str(trace_file), "--json", blocked=BUILD_STACK
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["command"] == "advise"
    assert document["recommended"]["build_args"]["CARGO_BUILD_JOBS"] in ("1", "2")


def test_the_plot_without_matplotlib_names_the_build_extra(trace_file: Path, tmp_path: Path) -> None:
    plot = tmp_path / "advice.png"
    done = _harness("advise", "--memory", "16G", "--trace", str(trace_file), "--plot", str(plot), blocked=BUILD_STACK)
    assert done.returncode == 3
    assert "needs matplotlib, from the build extra: pip install 'mas-patch-harness[build]'" in done.stderr
    assert not plot.exists()


@pytest.mark.parametrize("size", ["16X", "lots", "-1G", "0"])
def test_a_bad_memory_size_is_one_line_and_exit_2(size: str, trace_file: Path) -> None:
    done = _harness("advise", f"--memory={size}", "--trace", str(trace_file))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("mas-harness: error: ")
    assert "is not a memory size" in done.stderr


def _foreign(document: dict[str, object]) -> None:
    document["kind"] = "mas-harness-profile"


def _future(document: dict[str, object]) -> None:
    document["schema_version"] = 2


def _dangling(document: dict[str, object]) -> None:
    document["units"][1]["deps"] = ["ghost-1"]  # type: ignore[index]


def _mistyped(document: dict[str, object]) -> None:
    document["units"][0]["peak_rss_bytes"] = "1 GB"  # type: ignore[index]


@pytest.mark.parametrize("breaker", [_foreign, _future, _dangling, _mistyped])
def test_a_malformed_or_foreign_trace_is_one_line_and_exit_2(breaker: object, tmp_path: Path) -> None:
    document = trace_json(synthetic_release())
    breaker(document)  # type: ignore[operator]
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(document))
    done = _harness("advise", "--memory", "16G", "--trace", str(path))
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"mas-harness: error: trace {path}")
    assert done.stdout == ""


def test_a_file_that_is_not_json_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "trace.json"
    path.write_bytes(b"\x00\x01 not json")
    done = _harness("advise", "--memory", "16G", "--trace", str(path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "is not JSON" in done.stderr


def test_a_budget_below_the_heaviest_unit_fits_nothing_exit_1(
    trace_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["advise", "--memory", "2G", "--cpus", "2", "--trace", str(trace_file)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "nothing fits under 1.93 GB: the lowest predicted peak is 3.10 GB" in out


def test_the_recommendation_prints_both_build_arg_lines(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "--memory", "8G", "--cpus", "2", "--trace", str(trace_file)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "build.sh: docker buildx build --build-arg CARGO_BUILD_JOBS=1 --build-arg CARGO_PROFILE_RELEASE_LTO=false "
        "--build-arg CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16"
    ) in out
    assert "mas-harness: mas-harness build --ref v1.19.0 --source full --trace --build-arg CARGO_BUILD_JOBS=1" in out


def test_the_json_report_holds_every_candidate(trace_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["advise", "--memory", "8GiB", "--cpus", "3", "--margin", "20", "--trace", str(trace_file), "--json"]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema_version"] == 1 and document["command"] == "advise"
    assert [r["name"] for r in document["results"]] == ["fits-budget"]
    assert document["memory_budget_bytes"] == 8 * 2**30 and document["margin_percent"] == 20
    assert [(c["jobs"], c["beyond_measured"]) for c in document["candidates"]] == [(1, False), (2, False), (3, True)]
    first = document["candidates"][0]
    assert first["predicted_peak_bytes"] == 100 * 2**20 + 3 * GB
    assert first["predicted_wall_seconds"] == 300


def test_the_plot_is_written(trace_file: Path, tmp_path: Path) -> None:
    plot = tmp_path / "advice.svg"
    assert main(["advise", "--memory", "8G", "--trace", str(trace_file), "--plot", str(plot), "--json"]) == 0
    assert plot.read_text().lstrip().startswith("<?xml")


def test_without_traces_shipped_or_given_advise_says_so_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("harness.cli.commands.advise.traces_dir", lambda: tmp_path)
    assert main(["advise", "--memory", "8G"]) == 3
    assert "ships no build traces yet: pass --trace FILE" in capsys.readouterr().err


def test_a_ref_without_a_shipped_trace_takes_the_nearest_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for trace in (synthetic_release("v1.17.0"), synthetic_release("v1.19.0")):
        write_synthetic_trace(tmp_path / shipped_trace_name(trace), trace)
    monkeypatch.setattr("harness.cli.commands.advise.traces_dir", lambda: tmp_path)
    assert main(["advise", "--memory", "8G", "--cpus", "2", "--ref", "v1.18.2"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "v1.18.2 has no build trace: advising from the nearest traced release, v1.17.0" in out
    assert "advise v1.17.0" in out


def test_the_package_ships_a_traces_directory() -> None:
    from harness.resources import traces_dir  # noqa: PLC0415

    assert (traces_dir() / "README.md").is_file()
