"""The verdict store: static findings computed once per distinct input, never trusted when corrupt.

The findings stored here are made up (`compute` returns them): what is under test is the
store, which must give back exactly what was computed for exactly the same inputs. The
last tests run the real checks through the command line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from harness import __version__
from harness.analysis.findings import Finding
from harness.analysis.verdicts import VerdictCache, checks_version, tool_versions
from harness.cli.main import main
from tests.support import DockerfileTexts

FINDINGS = [
    Finding(check="knobs-declared", ok=True, line=122, message="ARG CARGO_BUILD_JOBS has default '2'"),
    Finding(check="shellcheck", ok=False, line=None, message="SC2068 (error): Double quote array expansions"),
]
TOOLS = {"shellcheck": "ShellCheck version: 0.11.0", "hadolint": "Haskell Dockerfile Linter 2.15.1"}
PRISTINE, PATCHED = b"FROM upstream\n", b"FROM patched\n"


class Counting:
    """A `compute` that says how often the store called it."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        self.calls = 0

    def __call__(self) -> list[Finding]:
        self.calls += 1
        return list(self.findings)


def _store(
    root: Path, *, reuse: bool = True, harness: str = "1.0", tools: dict[str, str] | None = None
) -> VerdictCache:
    versions = dict(tools or TOOLS)
    return VerdictCache(root, reuse=reuse, harness_version=harness, versions=lambda: versions)


def _lookup(store: VerdictCache, compute: Callable[[], list[Finding]], **inputs: Any) -> list[Finding]:
    arguments: dict[str, Any] = {
        "pristine": PRISTINE,
        "patched": PATCHED,
        "shape": "single",
        "scripts": "confined",
        **inputs,
    }
    return store.findings(compute=compute, **arguments)


def test_a_verdict_is_computed_once_then_read_back(tmp_path: Path) -> None:
    compute = Counting(FINDINGS)
    assert _lookup(_store(tmp_path), compute) == FINDINGS
    again = _store(tmp_path)  # the next run
    assert _lookup(again, compute) == FINDINGS
    assert compute.calls == 1
    assert (again.computed, again.reused) == (0, 1)
    [entry] = tmp_path.rglob("*.json")
    assert json.loads(entry.read_text())["key"]["harness"] == "1.0"


@pytest.mark.parametrize(
    "change",
    [
        {"pristine": PRISTINE + b"# one byte more\n"},
        {"patched": PATCHED + b"# one byte more\n"},
        {"pristine": None},
        {"shape": "per-arch"},
    ],
)
def test_other_inputs_are_other_verdicts(tmp_path: Path, change: dict[str, Any]) -> None:
    compute = Counting(FINDINGS)
    _lookup(_store(tmp_path), compute)
    _lookup(_store(tmp_path), compute, **change)
    assert compute.calls == 2


@pytest.mark.parametrize(
    "store",
    [
        lambda root: _store(root, harness="1.1"),
        lambda root: _store(root, tools={**TOOLS, "shellcheck": "ShellCheck version: 0.12.0"}),
        lambda root: _store(root, tools={**TOOLS, "hadolint": "Haskell Dockerfile Linter 2.16.0"}),
    ],
    ids=["harness", "shellcheck", "hadolint"],
)
def test_a_new_harness_or_tool_version_misses(tmp_path: Path, store: Callable[[Path], VerdictCache]) -> None:
    compute = Counting(FINDINGS)
    _lookup(_store(tmp_path), compute)
    _lookup(store(tmp_path), compute)
    assert compute.calls == 2


def test_without_a_pristine_file_no_lint_runs_and_no_tool_is_asked(tmp_path: Path) -> None:
    def no_tools() -> dict[str, str]:
        raise AssertionError("the lint tools' versions were asked for")

    store = VerdictCache(tmp_path, harness_version="1.0", versions=no_tools)
    assert (
        store.findings(pristine=None, patched=PATCHED, shape=None, scripts="confined", compute=Counting(FINDINGS))
        == FINDINGS
    )


def _tampered(entry: dict[str, Any]) -> dict[str, Any]:
    """A finding flipped to ok, its digest left as it was."""
    entry["findings"][1]["ok"] = True
    return entry


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[: len(data) // 2],  # cut short
        lambda data: b"\x00\xff" + data,
        lambda data: b"[]",
        lambda data: json.dumps(_tampered(json.loads(data))).encode(),
        lambda data: json.dumps({**json.loads(data), "format": 0}).encode(),
        lambda data: json.dumps({**json.loads(data), "key": {}}).encode(),
    ],
    ids=["truncated", "binary", "not-an-entry", "tampered", "other-format", "other-key"],
)
def test_a_corrupt_entry_is_computed_again_never_trusted(tmp_path: Path, corrupt: Callable[[bytes], bytes]) -> None:
    compute = Counting(FINDINGS)
    _lookup(_store(tmp_path), compute)
    [entry] = tmp_path.rglob("*.json")
    entry.write_bytes(corrupt(entry.read_bytes()))
    store = _store(tmp_path)
    assert _lookup(store, compute) == FINDINGS
    assert (compute.calls, store.computed) == (2, 1)
    assert _lookup(_store(tmp_path), compute) == FINDINGS, "the entry was replaced by a whole one"
    assert compute.calls == 2


def test_no_cache_computes_again_and_replaces_the_entry(tmp_path: Path) -> None:
    _lookup(_store(tmp_path), Counting(FINDINGS))
    fresh = Counting(FINDINGS[:1])
    store = _store(tmp_path, reuse=False)
    assert _lookup(store, fresh) == FINDINGS[:1]
    assert (fresh.calls, store.computed, store.reused) == (1, 1, 0)
    assert _lookup(_store(tmp_path), Counting([])) == FINDINGS[:1]


def test_an_unwritable_store_still_gives_the_verdict(tmp_path: Path) -> None:
    blocked = tmp_path / "verdicts"
    blocked.write_text("a file where the store's directory should be")
    store = _store(blocked)
    assert _lookup(store, Counting(FINDINGS)) == FINDINGS
    assert store.computed == 1


def _slow_lookup(root: str, marks: str) -> list[Finding]:
    def compute() -> list[Finding]:
        with Path(marks).open("a") as handle:
            handle.write("computed\n")
        return list(FINDINGS)

    return _lookup(_store(Path(root)), compute)


def test_concurrent_runs_compute_a_verdict_once(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    with ProcessPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(_slow_lookup, [str(tmp_path / "store")] * 8, [str(marks)] * 8))
    assert all(result == FINDINGS for result in results)
    assert marks.read_text() == "computed\n"


def test_the_harness_version_names_the_code_of_the_checks(tmp_path: Path) -> None:
    version = checks_version()
    assert version.startswith(f"{__version__}+checks.") and len(version) == len(__version__) + 24
    store = VerdictCache(tmp_path, versions=lambda: TOOLS)
    _lookup(store, Counting(FINDINGS))
    [entry] = tmp_path.rglob("*.json")
    assert json.loads(entry.read_text())["key"]["harness"] == version


def test_the_tool_versions_are_what_the_tools_say() -> None:
    versions = tool_versions()
    assert set(versions) == {"shellcheck", "hadolint"}
    assert "ShellCheck" in versions["shellcheck"] and "version" in versions["shellcheck"]
    assert "Haskell Dockerfile Linter" in versions["hadolint"]


# -- through the command line: check then compat share the verdicts ------------------------------------


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main([*argv, "--json"]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def test_check_then_compat_compute_each_verdict_once(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--upstream", str(bundle), "--cache-dir", str(tmp_path)]
    refs = ["--ref", "v1.16.0", "--ref", "v1.17.0"]  # two releases, one Dockerfile
    checked = _run(capsys, "check", *where, *refs)
    assert (checked["verdicts"]["computed"], checked["verdicts"]["reused"]) == (1, 0)
    compat = _run(capsys, "compat", *where, *refs)
    assert (compat["verdicts"]["computed"], compat["verdicts"]["reused"]) == (0, 1)
    recomputed = _run(capsys, "compat", *where, *refs, "--no-cache")
    assert (recomputed["verdicts"]["computed"], recomputed["verdicts"]["reused"]) == (1, 0)
    timeless = [[{k: v for k, v in r.items() if k != "duration"} for r in d["refs"]] for d in (recomputed, compat)]
    assert timeless[0] == timeless[1], "a stored verdict is the computed one"
    findings = {r["ref"]: r["findings"] for r in checked["refs"]}
    assert {r["ref"]: r["static"]["checks"] for r in compat["refs"]} == {k: len(v) for k, v in findings.items()}


def test_check_of_a_dockerfile_reuses_the_verdict_of_the_same_files(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], dockerfile_texts: DockerfileTexts
) -> None:
    pristine, patched = dockerfile_texts("v1.17.0")
    (tmp_path / "Dockerfile.orig").write_text(pristine)
    (tmp_path / "Dockerfile").write_text(patched)
    files = ["--dockerfile", str(tmp_path / "Dockerfile"), "--pristine", str(tmp_path / "Dockerfile.orig")]
    where = ["--upstream", str(bundle), "--cache-dir", str(tmp_path / "cache")]

    first = _run(capsys, "check", *where, *files)
    assert (first["verdicts"]["computed"], first["verdicts"]["reused"]) == (1, 0)
    again = _run(capsys, "check", *where, *files)
    assert (again["verdicts"]["computed"], again["verdicts"]["reused"]) == (0, 1)
    assert again["refs"][0]["findings"] == first["refs"][0]["findings"]
    fresh = _run(capsys, "check", *where, *files, "--no-cache")
    assert (fresh["verdicts"]["computed"], fresh["verdicts"]["reused"]) == (1, 0)


def test_a_lint_tools_output_is_kept_by_its_input_and_version(tmp_path: Path) -> None:
    runs: list[bytes] = []

    def hadolint(output: bytes) -> Callable[[], bytes]:
        def run() -> bytes:
            runs.append(output)
            return output

        return run

    first = _store(tmp_path)
    assert first.tool_output("hadolint", b"FROM a\n", hadolint(b'[{"code":"DL1"}]')) == b'[{"code":"DL1"}]'
    assert first.tool_output("hadolint", b"FROM a\n", hadolint(b"not asked")) == b'[{"code":"DL1"}]', "read back"
    assert first.tool_output("hadolint", b"FROM b\n", hadolint(b"[]")) == b"[]", "another input, another run"
    newer = _store(tmp_path, tools={**TOOLS, "hadolint": "2.99.0"})
    assert newer.tool_output("hadolint", b"FROM a\n", hadolint(b"[]")) == b"[]", "another version reads nothing old"
    assert runs == [b'[{"code":"DL1"}]', b"[]", b"[]"]
    # A damaged entry is run again, never trusted.
    [entry] = [p for p in (tmp_path / "tools").rglob("*.json") if b"DL1" in p.read_bytes()]
    entry.write_bytes(entry.read_bytes().replace(b"DL1", b"DL9"))
    assert first.tool_output("hadolint", b"FROM a\n", hadolint(b'[{"code":"DL1"}]')) == b'[{"code":"DL1"}]'
    assert len(runs) == 4
