"""CI reports: JUnit one case per ref and check, Markdown, and GitHub's step summary, from real results."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from harness.cli.main import main
from harness.report.formats import Case, compat_cases, junit_xml, markdown_cases, publish, static_cases


def _parse(data: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(data)
    assert root.tag == "testsuites"
    return root


def test_junit_has_one_case_each_and_failures_carry_the_detail() -> None:
    cases = [
        Case(suite="compat", name="v1.17.0", ok=True, message="applies"),
        Case(suite="compat", name="v1.18.0", ok=False, message="conflict", detail="hunk #2 conflict at line 133"),
    ]
    root = _parse(junit_xml("compat", cases))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    testcases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in testcases] == [("compat", "v1.17.0"), ("compat", "v1.18.0")]
    failure = testcases[1].find("failure")
    assert failure is not None and failure.get("message") == "conflict"
    assert failure.text == "hunk #2 conflict at line 133"
    assert testcases[0].find("failure") is None


def test_compat_over_every_pin_gives_cases_per_ref_and_check(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "compat.xml"
    argv = ["compat", "--upstream", str(bundle), "--cache-dir", str(tmp_path / "cache"), "--json"]
    assert main([*argv, "--junit", str(junit)]) == 0
    results = json.loads(capsys.readouterr().out)
    cases = compat_cases(results)
    assert {c.suite for c in cases} == {f"compat.{r['ref']}" for r in results}
    for result in results:
        names = [c.name for c in cases if c.suite == f"compat.{result['ref']}"]
        assert names == ["state", "static checks", "post-image"], result["ref"]
    v119 = next(c for c in cases if c.suite == "compat.v1.19.0" and c.name == "state")
    assert v119.detail.startswith("variant v1.18+: ")
    written = _parse(junit.read_bytes()).findall("./testsuite/testcase")
    assert len(written) == len(cases) == 3 * len(results)


def test_compat_cases_fail_where_the_result_does() -> None:
    result = {
        "ref": "v2.0.0",
        "ok": False,
        "state": "conflict",
        "expected": None,
        "reason": "hunk #2 conflicts",
        "patch": "p",
        "hunks": [{"index": 2, "header": "@@ -1 +1 @@", "status": "conflict", "mismatch_line": 133}],
        "static": {"ok": False, "checks": 30, "failed": ["move-step"]},
        "drift": {"pin": "v1.19.0", "differs": True, "compared": "nearest pin", "changed_lines": 4, "diff": "-a\n+b"},
    }
    state, static, drift = compat_cases([result])
    assert (state.ok, static.ok, drift.ok) == (True, False, True), "a static failure is its own case"
    assert "conflict at line 133" in state.detail
    assert "move-step" in static.message
    assert "differs from v1.19.0's" in drift.message and drift.detail == "-a\n+b"
    no_static = compat_cases([{**result, "static": None}])
    assert no_static[0].ok is False


def test_static_results_give_one_case_per_ref_and_check() -> None:
    results = [
        {"ref": "v1.7.0", "ok": True, "findings": [{"check": "knobs-declared", "ok": True, "line": 3, "message": "m"}]},
        {
            "ref": "v1.17.0",
            "ok": False,
            "findings": [
                {"check": "knobs-declared", "ok": True, "line": None, "message": "m"},
                {"check": "move-step", "ok": False, "line": 140, "message": "moves every binary"},
                {"check": "knobs-declared", "ok": True, "line": None, "message": "m2"},
            ],
        },
    ]
    cases = static_cases(results)
    assert [(c.suite, c.name, c.ok) for c in cases] == [
        ("static.v1.7.0", "knobs-declared", True),
        ("static.v1.17.0", "knobs-declared [1/2]", True),
        ("static.v1.17.0", "move-step", False),
        ("static.v1.17.0", "knobs-declared [2/2]", True),
    ]
    assert cases[2].message == "moves every binary (line 140)"


def test_publish_writes_files_and_appends_to_the_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    cases = [Case(suite="compat", name="v1.17.0", ok=False, message="a | b")]
    text = publish(
        title="compat",
        cases=cases,
        junit=tmp_path / "out" / "compat.xml",
        markdown=tmp_path / "out" / "compat.md",
        env={"GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert text == markdown_cases("compat", cases)
    assert "1 of 1 NOT OK" in text and "a \\| b" in text, "a pipe in a message must not split the table cell"
    assert (tmp_path / "out" / "compat.md").read_text() == text
    _parse((tmp_path / "out" / "compat.xml").read_bytes())
    assert summary.read_text() == "earlier step\n" + text + "\n", "appended, never overwritten"


def test_no_step_summary_outside_github(tmp_path: Path) -> None:
    publish(title="t", cases=[], junit=None, markdown=None, env={})
    assert list(tmp_path.iterdir()) == []


def test_summary_command_writes_markdown_json_and_fails_a_tier_with_no_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = '<testcase classname="tests.unit.test_x" name="a"/>'
    (tmp_path / "unit.xml").write_text(f'<testsuites><testsuite name="pytest">{case}</testsuite></testsuites>')
    (tmp_path / "empty.xml").write_text('<testsuites><testsuite name="pytest" tests="0"/></testsuites>')
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    argv = ["summary", "--reports", str(tmp_path), "--pytest", "unit.xml"]
    assert main([*argv, "--markdown", str(tmp_path / "s.md"), "--json", str(tmp_path / "s.json")]) == 0
    data = json.loads((tmp_path / "s.json").read_text())
    assert data == {"ok": True, "parts": [{"part": "unit tests", "passed": 1, "failed": 0, "skipped": 0, "ok": True}]}
    assert "| unit tests | 1 | 0 | 0 | ok |" in (tmp_path / "s.md").read_text()
    assert step.read_text().startswith("### mas-harness summary: all ok")
    assert main(["summary", "--reports", str(tmp_path), "--pytest", "empty.xml"]) == 1, "no test ran: not ok"
    assert main(["summary", "--reports", str(tmp_path), "--pytest", "missing.xml"]) == 1


def test_check_writes_junit_and_markdown_for_every_finding(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    junit, markdown = tmp_path / "static.xml", tmp_path / "static.md"
    argv = ["check", "--upstream", str(bundle), "--cache-dir", str(tmp_path / "c"), "--ref", "v1.7.0", "--json"]
    assert main([*argv, "--junit", str(junit), "--markdown", str(markdown)]) == 0
    [result] = json.loads(capsys.readouterr().out)
    cases = _parse(junit.read_bytes()).findall("./testsuite/testcase")
    assert len(cases) == len(result["findings"]) > 0
    assert len({(c.get("classname"), c.get("name")) for c in cases}) == len(cases), "no two cases share a name"
    assert markdown.read_text().startswith("### static checks: all ok")
    assert step.read_text() == markdown.read_text() + "\n"
