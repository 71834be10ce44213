"""The session summary is computed from the reports, and a failure anywhere makes it fail; the `summary` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import BadInput
from harness.report.summary import junit_tiers, summarize
from harness.results import SCHEMA_VERSION, exit_code

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.unit.test_engine" name="a"/>
<testcase classname="tests.unit.test_engine" name="b"><failure message="x"/></testcase>
<testcase classname="tests.integration.test_build" name="c"><skipped message="no engine"/></testcase>
<testcase classname="tests.integration.test_build" name="d"/>
</testsuite></testsuites>
"""


def _document(command: str, *statuses: str) -> str:
    results = [{"group": command, "name": str(i), "status": s, "reason": ""} for i, s in enumerate(statuses)]
    return json.dumps({"schema_version": SCHEMA_VERSION, "command": command, "results": results})


def _reports(tmp_path: Path, junit: str, static_ok: bool) -> Path:
    (tmp_path / "verify.xml").write_text(junit)
    (tmp_path / "static.json").write_text(_document("check", "ok" if static_ok else "failed"))
    (tmp_path / "compat.json").write_text(_document("compat", "ok", "ok"))
    return tmp_path


def _ok(reports: Path) -> bool:
    outcome = summarize(reports, pytest_files=["verify.xml"], json_reports=["static.json", "compat.json"])
    return exit_code(outcome.results) == 0


def test_tiers_are_counted_from_junit(tmp_path: Path) -> None:
    tiers = {
        t.name: (t.passed, t.failed, t.skipped) for t in junit_tiers(_reports(tmp_path, JUNIT, True) / "verify.xml")
    }
    assert tiers == {"integration tests": (1, 0, 1), "unit tests": (1, 1, 0)}


def test_each_failed_test_is_named_with_the_first_line_of_its_message(tmp_path: Path) -> None:
    junit = JUNIT.replace('<failure message="x"/>', '<failure message="assert 1 == 2&#10;more">trace</failure>')
    outcome = summarize(_reports(tmp_path, junit, True), pytest_files=["verify.xml"])

    assert outcome.notes == ("failed: tests/unit/test_engine.py::b: assert 1 == 2",)
    [unit] = [part for part in outcome.data["parts"] if part["name"] == "unit tests"]  # type: ignore[attr-defined]
    assert unit["failures"] == ["tests/unit/test_engine.py::b: assert 1 == 2"]


def test_summary_fails_on_a_failed_test_or_ref(tmp_path: Path) -> None:
    assert _ok(_reports(tmp_path, JUNIT, True)) is False
    clean = JUNIT.replace('<failure message="x"/>', "")
    assert _ok(_reports(tmp_path, clean, True)) is True
    assert _ok(_reports(tmp_path, clean, False)) is False


def test_a_missing_report_fails_and_a_malformed_one_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "verify.xml").write_text(JUNIT.replace('<failure message="x"/>', ""))
    assert _ok(tmp_path) is False, "static.json and compat.json were never written"
    (tmp_path / "static.json").write_text("{not json")
    with pytest.raises(BadInput, match="not a JSON report"):
        summarize(tmp_path, json_reports=["static.json"])
    (tmp_path / "verify.xml").write_text("<testsuites>")
    with pytest.raises(BadInput, match="not a JUnit XML file"):
        summarize(tmp_path, pytest_files=["verify.xml"])


def test_summary_command_writes_markdown_json_and_fails_a_tier_with_no_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = '<testcase classname="tests.unit.test_x" name="a"/>'
    (tmp_path / "unit.xml").write_text(f'<testsuites><testsuite name="pytest">{case}</testsuite></testsuites>')
    (tmp_path / "empty.xml").write_text('<testsuites><testsuite name="pytest" tests="0"/></testsuites>')
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    argv = ["summary", "--reports", str(tmp_path), "--pytest", "unit.xml"]
    assert main([*argv, "--markdown", str(tmp_path / "s.md"), "--output", str(tmp_path / "s.json")]) == 0
    data = json.loads((tmp_path / "s.json").read_text())
    assert (data["schema_version"], data["command"], data["ok"]) == (1, "summary", True)
    assert data["parts"] == [
        {"name": "unit tests", "passed": 1, "failed": 0, "skipped": 0, "missing": False, "failures": [], "status": "ok"}
    ]
    assert "| unit tests | 1 | 0 | 0 | ok |" in (tmp_path / "s.md").read_text()
    assert step.read_text().startswith("### mas-harness summary: all ok")
    assert main(["summary", "--reports", str(tmp_path), "--pytest", "empty.xml"]) == 1, "no test ran: not ok"
    assert main(["summary", "--reports", str(tmp_path), "--pytest", "missing.xml"]) == 1
