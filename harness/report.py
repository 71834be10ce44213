"""Reporting: results as data rendered as a terminal table or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from xml.etree import ElementTree

from rich.console import Console
from rich.table import Table

from harness.compat import CompatResult, StaticResult
from harness.patching import HunkReport


def _hunk_cell(hunk: HunkReport) -> str:
    if hunk.status == "offset":
        return f"#{hunk.index} offset {hunk.offset:+d}"
    if hunk.status == "conflict":
        return f"#{hunk.index} conflict at line {hunk.mismatch_line}"
    return f"#{hunk.index} {hunk.status}"


def _static_cell(result: CompatResult) -> str:
    if result.static is None:
        return "-"
    if result.static.ok:
        return f"ok ({result.static.checks})"
    return "[red]FAIL[/red] " + ", ".join(dict.fromkeys(f.check for f in result.static.failed))


def _drift_cell(result: CompatResult) -> str:
    drift = result.drift
    if drift is None:
        return "-"
    if drift.differs is None:
        return f"{drift.pin} not compared"
    if drift.compared == "lock":
        return "matches its lock" if not drift.differs else "[red]differs from its lock[/red]"
    if not drift.differs:
        return f"same as {drift.pin}"
    return f"{drift.changed_lines} lines differ from {drift.pin}"


def _plain_choice(result: CompatResult) -> bool:
    """A release tag inside its variant's range: the table says all there is to say."""
    choice = result.choice
    return choice.basis == "only" or (choice.basis == "in-range" and choice.version_tag == result.ref)


def compat_table(results: Sequence[CompatResult]) -> Table:
    table = Table(title="Patch compatibility", show_lines=False)
    columns = ("ref", "upstream commit", "Dockerfile", "variant", "state", "expected", "hunks", "static")
    for column in (*columns, "post-image", "verdict"):
        table.add_column(column)
    for result in results:
        variant = result.choice.variant.name
        table.add_row(
            result.ref,
            result.upstream_commit[:12],
            result.dockerfile_blob[:12],
            variant if _plain_choice(result) else f"{variant} *",
            str(result.state),
            result.expected or "(no pin)",
            ", ".join(_hunk_cell(h) for h in result.hunks),
            _static_cell(result),
            _drift_cell(result),
            "[green]ok[/green]" if result.ok else "[red]NOT OK[/red]",
        )
    return table


def print_compat(results: Sequence[CompatResult], console: Console) -> None:
    console.print(compat_table(results))
    for result in results:
        if not _plain_choice(result):
            console.print(f"* {result.choice.reason}", highlight=False, markup=False, soft_wrap=True)
        if result.drift is not None and result.drift.note:
            console.print(f"{result.ref}: {result.drift.note}", highlight=False, markup=False, soft_wrap=True)
        if result.drift is not None and result.drift.compared == "text" and result.drift.differs:
            console.print(
                f"{result.ref}: the patched Dockerfile differs from {result.drift.pin}'s in "
                f"{result.drift.changed_lines} lines (the diff is in --json)",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
        if not result.ok:
            console.print(f"[red]{result.ref}[/red]: {result.reason}", highlight=False, soft_wrap=True)
            for hunk in result.hunks:
                if hunk.status == "conflict":
                    console.print(f"  {hunk.describe()}", highlight=False, markup=False, soft_wrap=True)
            for finding in result.static.failed if result.static else ():
                console.print(
                    f"  {finding.check} (line {finding.line}): {finding.message}",
                    highlight=False,
                    markup=False,
                    soft_wrap=True,
                )


def compat_json(results: Sequence[CompatResult]) -> str:
    return json.dumps([r.as_json() for r in results], indent=2)


def findings_table(results: Sequence[StaticResult]) -> Table:
    table = Table(title="Static checks of the patched Dockerfile")
    for column in ("ref", "check", "line", "verdict", "message"):
        table.add_column(column, overflow="fold")
    for result in results:
        for finding in result.findings:
            table.add_row(
                result.ref,
                finding.check,
                str(finding.line or ""),
                "[green]ok[/green]" if finding.ok else "[red]FAIL[/red]",
                finding.message,
            )
    return table


def static_json(results: Sequence[StaticResult]) -> str:
    return json.dumps(
        [{"ref": r.ref, "patch": r.patch, "ok": r.ok, "findings": [asdict(f) for f in r.findings]} for r in results],
        indent=2,
    )


@dataclass(frozen=True, kw_only=True)
class TierSummary:
    tier: str
    passed: int
    failed: int
    skipped: int


def junit_tiers(junit_xml: Path) -> list[TierSummary]:
    """Per-tier counts (tests/unit, tests/integration, ...) from a pytest JUnit XML file."""
    counts: dict[str, list[int]] = {}
    for case in ElementTree.parse(junit_xml).getroot().iter("testcase"):
        parts = (case.get("classname") or "").split(".")
        tier = parts[1] if len(parts) > 1 and parts[0] == "tests" else "other"
        slot = counts.setdefault(tier, [0, 0, 0])
        if case.find("failure") is not None or case.find("error") is not None:
            slot[1] += 1
        elif case.find("skipped") is not None:
            slot[2] += 1
        else:
            slot[0] += 1
    return [TierSummary(tier=t, passed=p, failed=f, skipped=s) for t, (p, f, s) in sorted(counts.items())]


def verify_summary(reports: Path) -> tuple[Table, bool]:
    """One table for `nox -s verify`: test tiers from JUnit, then the static and compat JSON reports."""
    table = Table(title="verify summary")
    for column in ("part", "passed", "failed", "skipped", "verdict"):
        table.add_column(column)
    ok = True
    for tier in junit_tiers(reports / "verify.xml"):
        good = tier.failed == 0 and tier.passed > 0
        ok &= good
        table.add_row(
            f"{tier.tier} tests",
            str(tier.passed),
            str(tier.failed),
            str(tier.skipped),
            "[green]ok[/green]" if good else "[red]NOT OK[/red]",
        )
    for name in ("static", "compat"):
        results = json.loads((reports / f"{name}.json").read_text())
        failed = sum(1 for r in results if not r["ok"])
        ok &= failed == 0
        table.add_row(
            f"{name} (refs)",
            str(len(results) - failed),
            str(failed),
            "0",
            "[green]ok[/green]" if failed == 0 else "[red]NOT OK[/red]",
        )
    return table, ok
