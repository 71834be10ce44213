"""Reporting: results as data rendered as a terminal table or JSON."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from rich.console import Console
from rich.table import Table

from harness.analysis.compat import CompatResult, StaticResult
from harness.analysis.findings import Finding
from harness.analysis.superproject import SuperprojectCheck
from harness.patch.hunks import HunkReport
from harness.patch.patchfile import git_blob_id
from harness.patch.merge import CONFLICT_REASONS
from harness.patch.rebase import Refresh
from harness.report.formats import markdown_table


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


@dataclass(frozen=True, kw_only=True)
class SummaryRow:
    part: str
    passed: int
    failed: int
    skipped: int

    @property
    def ok(self) -> bool:
        # A tier that ran no test is a failure, as pytest's exit 5 is.
        return self.failed == 0 and self.passed > 0


def summary_rows(
    reports: Path,
    *,
    pytest_files: Sequence[str] = ("verify.xml",),
    ref_reports: Sequence[str] = ("static.json", "compat.json"),
    profile_reports: Sequence[str] | None = None,
) -> list[SummaryRow]:
    """Test tiers from pytest's JUnit files, refs from static/compat JSON, profiles from profile JSON.

    Files are named relative to `reports`; a named file that is missing is a failed part, so a step that
    crashed before writing its report cannot pass. `profile_reports=None` takes every profile*/profile.json.
    """
    rows: list[SummaryRow] = []
    for name in pytest_files:
        path = reports / name
        if not path.is_file():
            rows.append(SummaryRow(part=f"{name} (missing)", passed=0, failed=1, skipped=0))
            continue
        rows += [
            SummaryRow(part=f"{tier.tier} tests", passed=tier.passed, failed=tier.failed, skipped=tier.skipped)
            for tier in junit_tiers(path)
        ]
    for name in ref_reports:
        rows.append(_json_part(reports / name, f"{Path(name).stem} (refs)", lambda data: data))
    profiles = (
        [p.relative_to(reports) for p in sorted(reports.glob("profile*/profile.json"))]
        if profile_reports is None
        else [Path(name) for name in profile_reports]
    )
    for relative in profiles:
        part = f"{relative.parent.name or relative.stem} (profiles)"
        rows.append(_json_part(reports / relative, part, lambda data: data.get("profiles", [])))
    return rows


def _json_part(path: Path, part: str, entries: Callable[[Any], list[dict[str, Any]]]) -> SummaryRow:
    """A JSON report's entries counted by their `ok`; a report that was never written fails its part."""
    if not path.is_file():
        return SummaryRow(part=f"{part}: {path} missing", passed=0, failed=1, skipped=0)
    found = entries(json.loads(path.read_text()))
    failed = sum(1 for entry in found if not entry["ok"])
    return SummaryRow(part=part, passed=len(found) - failed, failed=failed, skipped=0)


def summary_table(rows: Sequence[SummaryRow]) -> Table:
    table = Table(title="mas-harness summary")
    for column in ("part", "passed", "failed", "skipped", "verdict"):
        table.add_column(column)
    for row in rows:
        verdict = "[green]ok[/green]" if row.ok else "[red]NOT OK[/red]"
        table.add_row(row.part, str(row.passed), str(row.failed), str(row.skipped), verdict)
    return table


def summary_markdown(rows: Sequence[SummaryRow]) -> str:
    verdict = "all ok" if rows and all(row.ok for row in rows) else "NOT OK"
    table = markdown_table(
        ("part", "passed", "failed", "skipped", "verdict"),
        [(row.part, row.passed, row.failed, row.skipped, "ok" if row.ok else "**NOT OK**") for row in rows],
    )
    return f"### mas-harness summary: {verdict}\n\n{table}"


def verify_summary(reports: Path) -> tuple[Table, bool]:
    """One table for `nox -s verify`: test tiers from JUnit, then the static, compat and profile reports."""
    rows = summary_rows(reports)
    return summary_table(rows), bool(rows) and all(row.ok for row in rows)


def print_superproject_check(check: SuperprojectCheck, console: Console) -> None:
    """What was checked in a superproject, the compat row with every hunk, then the static findings if run."""
    sub = check.submodule
    notes = []
    if sub.bump_staged:
        notes.append(f"staged; HEAD records {(sub.committed_commit or '')[:12]}")
    if sub.checked_out is None:
        notes.append("not checked out")
    elif not sub.at_recorded_commit:
        notes.append(f"checked out at {sub.checked_out[:12]}")
    console.print(f"superproject: {check.superproject}", highlight=False)
    console.print(
        f"submodule: {sub.path} records {sub.recorded_commit[:12]}" + (f" ({'; '.join(notes)})" if notes else ""),
        highlight=False,
    )
    console.print(f"checked: {check.compat.ref} from {check.source}", highlight=False, soft_wrap=True)
    console.print(compat_table([check.compat]))
    for hunk in check.compat.hunks:
        console.print(f"  {hunk.describe()}", highlight=False, markup=False, soft_wrap=True)
    if not check.compat.ok:
        console.print(f"{check.compat.ref}: {check.compat.reason}", highlight=False, markup=False, soft_wrap=True)
    if check.static is not None:
        console.print(findings_table([check.static]))
    verdict = "[green]ok[/green]" if check.ok else "[red]NOT OK[/red]"
    console.print(f"verdict: {verdict}", highlight=False)


def superproject_json(check: SuperprojectCheck) -> str:
    return json.dumps(check.as_json(), indent=2)


# -- refresh ---------------------------------------------------------------------------------------

_REFRESH_VERDICT = {"clean": "[green]clean[/green]", "upstream": "[yellow]already upstream[/yellow]"}


def _at_sign(header: str) -> str:
    """`@@ -76,13 +76,9 @@` without the section heading git appends."""
    return header[: header.index(" @@", 2) + 3] if " @@" in header[2:] else header


def refresh_table(result: Refresh) -> Table:
    table = Table(title=f"refresh {result.patch.name} onto {result.target_label}")
    for column in ("hunk", "was", "result", "now", "detail"):
        table.add_column(column, overflow="fold")
    for hunk in result.hunks:
        if hunk.status == "conflict":
            verdict = "[red]needs a human[/red]" + (" (resolved by hand)" if result.status == "resolved" else "")
            now = "lines " + ", ".join(change.region for change in hunk.conflicts)
            detail = "; ".join(
                f"{change.region}: {CONFLICT_REASONS[change.kind]}" for change in hunk.conflicts if change.kind
            )
        else:
            verdict = _REFRESH_VERDICT[hunk.status]
            now = f"line {hunk.new_start}" if hunk.new_start is not None else "-"
            detail = f"offset {hunk.offset:+d}" if hunk.offset is not None else "the ref has this change"
        if hunk.new_header:
            now = _at_sign(hunk.new_header)
        table.add_row(f"{hunk.file} #{hunk.index}", _at_sign(hunk.header), verdict, now, detail)
    return table


def _print_lines(console: Console, title: str, lines: Sequence[str], first: int | None) -> None:
    console.print(f"    {title}:" + ("" if lines else " (nothing)"), highlight=False, markup=False)
    for offset, line in enumerate(lines):
        number = f"{first + offset:4d}" if first is not None else "    "
        console.print(f"    {number} | {line}", highlight=False, markup=False, soft_wrap=True)


def print_refresh(
    result: Refresh, console: Console, *, findings: Sequence[Finding] | None, written: Sequence[str]
) -> None:
    console.print(refresh_table(result))
    # Once resolved by hand, the regions are history; the static checks below are what matters.
    for hunk in result.conflicting_hunks if result.status != "resolved" else ():
        for number, change in enumerate(hunk.conflicts, start=1):
            reason = CONFLICT_REASONS[change.kind] if change.kind else ""
            console.print(
                f"{hunk.file} hunk #{hunk.index}, region {number}: "
                f"{result.target_label} {'lines' if '-' in change.region else 'line'} {change.region}: {reason}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
            _print_lines(console, f"{result.target_label} (upstream)", change.upstream_lines, change.new_line)
            _print_lines(console, f"the patch's pre-image (line {change.base_line})", change.base_lines, None)
            _print_lines(console, "the patch", change.patch_lines, None)
    if findings is not None:
        static = StaticResult(ref=result.target_label, patch="refreshed", findings=tuple(findings))
        console.print(findings_table([static]))
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    for line in written:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def refresh_json(result: Refresh, *, findings: Sequence[Finding] | None, written: Mapping[str, str | None]) -> str:
    ok = result.status in ("clean", "resolved") and all(finding.ok for finding in findings or ())
    return json.dumps(
        {
            "patch": str(result.patch),
            "ref": result.target_label,
            "status": result.status,
            "ok": ok,
            "summary": result.summary(),
            "files": [
                {
                    "path": f.path,
                    "preimage_blob": f.base_blob,
                    "ref_blob": f.target_blob,
                    "conflicts": f.conflicts,
                    "refreshed_blob": git_blob_id(f.result) if f.result is not None else None,
                }
                for f in result.files
            ],
            "hunks": [
                {
                    "file": h.file,
                    "index": h.index,
                    "header": h.header,
                    "status": h.status,
                    "old_start": h.old_start,
                    "new_start": h.new_start,
                    "offset": h.offset,
                    "new_header": h.new_header,
                    "changes": [asdict(change) for change in h.changes],
                }
                for h in result.hunks
            ],
            "static": [asdict(finding) for finding in findings] if findings is not None else None,
            "notes": list(result.notes),
            **written,
        },
        indent=2,
    )
