"""The verify summary is computed from the reports, and a failure anywhere makes it fail."""

from __future__ import annotations

import json
from pathlib import Path

from harness.report.views import junit_tiers, verify_summary

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
<testcase classname="tests.unit.test_engine" name="a"/>
<testcase classname="tests.unit.test_engine" name="b"><failure message="x"/></testcase>
<testcase classname="tests.integration.test_build" name="c"><skipped message="no engine"/></testcase>
<testcase classname="tests.integration.test_build" name="d"/>
</testsuite></testsuites>
"""


def _reports(tmp_path: Path, junit: str, static_ok: bool) -> Path:
    (tmp_path / "verify.xml").write_text(junit)
    (tmp_path / "static.json").write_text(json.dumps([{"ref": "v1.7.0", "ok": static_ok}]))
    (tmp_path / "compat.json").write_text(json.dumps([{"ref": "v1.7.0", "ok": True}, {"ref": "v1.18.0", "ok": True}]))
    return tmp_path


def test_tiers_are_counted_from_junit(tmp_path: Path) -> None:
    tiers = {
        t.tier: (t.passed, t.failed, t.skipped) for t in junit_tiers(_reports(tmp_path, JUNIT, True) / "verify.xml")
    }
    assert tiers == {"integration": (1, 0, 1), "unit": (1, 1, 0)}


def test_summary_fails_on_a_failed_test_or_ref(tmp_path: Path) -> None:
    assert verify_summary(_reports(tmp_path, JUNIT, True))[1] is False
    clean = JUNIT.replace('<failure message="x"/>', "")
    assert verify_summary(_reports(tmp_path, clean, True))[1] is True
    assert verify_summary(_reports(tmp_path, clean, False))[1] is False
