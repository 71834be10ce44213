"""Reports for CI from one Outcome: JUnit one case per result, Markdown, GitHub's step summary and annotations."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from xml.etree import ElementTree

import pytest
from rich.console import Console

from harness.analysis.compat import check_ref
from harness.analysis.confine import Confinement
from harness.analysis.findings import Finding
from harness.analysis.patched import Analysis, StaticSummary
from harness.analysis.static import StaticChecks
from harness.analysis.verdicts import VerdictCache
from harness.cli.main import main
from harness.config.pins import Pins
from harness.report.formats import github_annotations, junit_xml, markdown
from harness.report.publish import Sinks, check_writable, publish
from harness.report.views import compat_results, finding_results
from harness.results import Location, Outcome, Result, Status
from harness.upstream.cache import UpstreamCache
from tests.support import CompatRun


def _parse(data: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(data)
    assert root.tag == "testsuites"
    return root


def _outcome(*results: Result) -> Outcome:
    return Outcome(command="compat", title="compat", results=results)


def test_junit_has_one_case_each_and_failures_carry_the_detail() -> None:
    outcome = _outcome(
        Result(group="compat", name="v1.17.0", status=Status.OK, reason="applies", duration=0.25),
        Result(group="compat", name="v1.18.0", status=Status.FAILED, reason="conflict", detail="hunk #2 at line 133"),
        Result(group="compat", name="v9", status=Status.ERROR, reason="not UTF-8"),
    )
    root = _parse(junit_xml(outcome))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    testcases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in testcases] == [
        ("compat", "v1.17.0"),
        ("compat", "v1.18.0"),
        ("compat", "v9"),
    ]
    assert testcases[0].get("time") == "0.250", "durations reach JUnit"
    failure = testcases[1].find("failure")
    assert failure is not None and failure.get("message") == "conflict"
    assert failure.text == "hunk #2 at line 133"
    assert testcases[0].find("failure") is None
    assert testcases[2].find("error") is not None


def test_compat_over_every_pin_gives_results_per_ref_and_check(compat_all: CompatRun) -> None:
    assert compat_all.code == 0
    document = compat_all.document
    refs, results = document["refs"], document["results"]
    assert {r["group"] for r in results} == {f"compat.{r['ref']}" for r in refs}
    for ref in refs:
        names = [r["name"] for r in results if r["group"] == f"compat.{ref['ref']}"]
        assert names == ["state", "static checks", "post-image", "upstream-release-profile"], ref["ref"]
    v119 = next(r for r in results if r["group"] == "compat.v1.19.0" and r["name"] == "state")
    assert v119["detail"].startswith("variant v1.18+: ")
    assert v119["duration"] > 0
    written = _parse(compat_all.junit).findall("./testsuite/testcase")
    assert len(written) == len(results) == 4 * len(refs)


def test_compat_results_fail_where_the_result_does(
    confinement: Confinement, bundle_cache: UpstreamCache, pins: Pins, shared_cache: Path
) -> None:
    checks = StaticChecks(confinement=confinement, verdicts=VerdictCache.in_cache_dir(shared_cache))
    real = check_ref(bundle_cache, "v1.19.0", pins=pins, analysis=Analysis(checks=checks))
    failing = Finding(check="move-step", ok=False, line=140, message="moves every binary")
    broken = replace(
        real,
        ok=False,
        reason="applies, but the patched Dockerfile fails the static checks: move-step",
        static=StaticSummary(findings=(failing,)),
    )
    state, static, drift, profile = compat_results(broken)
    assert (state.passed, static.passed, drift.passed, profile.passed) == (True, False, True, True), (
        "a static failure is its own result"
    )
    assert "move-step" in static.reason and "moves every binary" in static.detail
    assert "upstream builds with fat LTO (lto = true) at v1.19.0" in profile.reason
    conflict = replace(real, ok=False, static=None, reason="conflict")
    assert compat_results(conflict)[0].status is Status.FAILED


def test_findings_give_one_result_per_ref_and_check() -> None:
    findings = [
        Finding(check="knobs-declared", ok=True, line=None, message="m"),
        Finding(check="move-step", ok=False, line=140, message="moves every binary"),
        Finding(check="knobs-declared", ok=True, line=None, message="m2"),
    ]
    results = finding_results(findings, group="static.v1.17.0", path="v1.17.0:Dockerfile (patched)")
    assert [(r.group, r.name, r.passed) for r in results] == [
        ("static.v1.17.0", "knobs-declared [1/2]", True),
        ("static.v1.17.0", "move-step", False),
        ("static.v1.17.0", "knobs-declared [2/2]", True),
    ]
    assert results[1].location == Location(path="v1.17.0:Dockerfile (patched)", line=140)


def test_publish_writes_files_and_appends_to_the_step_summary(tmp_path: Path) -> None:
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    (tmp_path / "out").mkdir()
    outcome = _outcome(Result(group="compat", name="v1.17.0", status=Status.FAILED, reason="a | b"))
    sinks = Sinks.from_environment(
        {"GITHUB_STEP_SUMMARY": str(summary)},
        output=tmp_path / "out" / "compat.json",
        junit=tmp_path / "out" / "compat.xml",
        markdown=tmp_path / "out" / "compat.md",
    )
    check_writable(sinks)
    publish(outcome, sinks, Console(file=open("/dev/null", "w")))  # noqa: SIM115, PTH123
    text = markdown(outcome)
    assert "1 of 1 not ok" in text and "a \\| b" in text, "a pipe in a message must not split the table cell"
    assert (tmp_path / "out" / "compat.md").read_text() == text
    assert json.loads((tmp_path / "out" / "compat.json").read_text())["status"] == "failed"
    _parse((tmp_path / "out" / "compat.xml").read_bytes())
    assert summary.read_text() == "earlier step\n" + text + "\n", "appended, never overwritten"


def test_no_step_summary_outside_github() -> None:
    assert Sinks.from_environment({}).step_summary is None


def test_annotations_point_at_the_patch_line_of_a_failed_result() -> None:
    outcome = _outcome(
        Result(
            group="compat.v1.18.0",
            name="state",
            status=Status.FAILED,
            reason="hunk #2: conflict, 50% off",
            location=Location(path="patches/p.patch", line=49),
        ),
        Result(group="compat.v1.17.0", name="state", status=Status.OK, reason="ok", location=Location(path="x")),
    )
    assert github_annotations(outcome) == (
        "::error file=patches/p.patch,line=49,title=compat.v1.18.0 state::hunk #2: conflict, 50%25 off\n"
    )


def test_check_writes_junit_and_markdown_for_every_finding(
    bundle: Path,
    tmp_path: Path,
    shared_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    step = tmp_path / "step.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    junit, md = tmp_path / "static.xml", tmp_path / "static.md"
    argv = ["check", "--upstream", str(bundle), "--cache-dir", str(shared_cache), "--ref", "v1.7.0", "--json"]
    assert main([*argv, "--junit", str(junit), "--markdown", str(md)]) == 0
    [result] = json.loads(capsys.readouterr().out)["refs"]
    cases = _parse(junit.read_bytes()).findall("./testsuite/testcase")
    assert len(cases) == len(result["findings"]) > 0
    assert len({(c.get("classname"), c.get("name")) for c in cases}) == len(cases), "no two cases share a name"
    assert md.read_text().startswith("### Static checks of the patched Dockerfile: all ok")
    assert step.read_text() == md.read_text() + "\n"
