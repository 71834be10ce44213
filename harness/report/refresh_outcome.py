"""`refresh` as an Outcome: every hunk of the input patch, the static checks of the result, one verdict."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from harness.analysis.refresh_run import RefreshRun
from harness.patch.patchfile import git_blob_id
from harness.patch.refresh_merge import CONFLICT_REASONS, ChangeMerge, HunkMerge
from harness.patch.refresh_rebase import Refresh
from harness.report.views import STATIC_TITLE, finding_results, findings_table
from harness.results import NO_FRAME, Column, Frame, Outcome, Result, Row, Status, Table

_HUNK_VERDICT = {"clean": "clean", "upstream": "already upstream", "conflict": "needs a human"}


def _at_sign(header: str) -> str:
    """`@@ -76,13 +76,9 @@` without the section heading git appends."""
    return header[: header.index(" @@", 2) + 3] if " @@" in header[2:] else header


def _hunk_row(refresh: Refresh, hunk: HunkMerge) -> Row:
    resolved = refresh.status == "resolved"
    if hunk.status == "conflict":
        result = _HUNK_VERDICT["conflict"] + (" (resolved by hand)" if resolved else "")
        now = "lines " + ", ".join(change.region for change in hunk.conflicts)
        detail = "; ".join(f"{c.region}: {CONFLICT_REASONS[c.kind]}" for c in hunk.conflicts if c.kind)
    else:
        result = _HUNK_VERDICT[hunk.status]
        now = f"line {hunk.new_start}" if hunk.new_start is not None else "-"
        detail = f"offset {hunk.offset:+d}" if hunk.offset is not None else "the ref has this change"
    if hunk.new_header:
        now = _at_sign(hunk.new_header)
    status = Status.OK if hunk.status != "conflict" or resolved else Status.FAILED
    return Row(cells=(f"{hunk.file} #{hunk.index}", _at_sign(hunk.header), result, now, detail), status=status)


def _region_lines(title: str, lines: Sequence[str], first: int | None) -> list[str]:
    out = [f"    {title}:" + ("" if lines else " (nothing)")]
    for offset, line in enumerate(lines):
        number = f"{first + offset:4d}" if first is not None else "    "
        out.append(f"    {number} | {line}")
    return out


def _region_notes(refresh: Refresh, hunk: HunkMerge, number: int, change: ChangeMerge) -> list[str]:
    reason = CONFLICT_REASONS[change.kind] if change.kind else ""
    target = refresh.target_label
    return [
        f"{hunk.file} hunk #{hunk.index}, region {number}: "
        f"{target} {'lines' if '-' in change.region else 'line'} {change.region}: {reason}",
        *_region_lines(f"{target} (upstream)", change.upstream_lines, change.new_line),
        *_region_lines(f"the patch's pre-image (line {change.base_line})", change.base_lines, None),
        *_region_lines("the patch", change.patch_lines, None),
    ]


def refresh_outcome(run: RefreshRun, *, patch_shown: str, frame: Frame = NO_FRAME) -> Outcome:
    refresh = run.refresh
    status, reason = run.verdict()
    group = f"refresh.{refresh.target_label}"
    results = [Result(name="refresh", status=status, reason=reason, group=group)]
    rows = [_hunk_row(refresh, hunk) for hunk in refresh.hunks]
    results += [
        Result(
            name=f"hunk #{hunk.index}",
            status=row.status or Status.OK,
            reason=f"{row.cells[2]}: {row.cells[4]}",
            group=group,
        )
        for hunk, row in zip(refresh.hunks, rows, strict=True)
    ]
    tables = [
        Table(
            title=f"refresh {refresh.patch.name} onto {refresh.target_label}",
            columns=(
                Column(header="hunk"),
                Column(header="was"),
                Column(header="result"),
                Column(header="now"),
                Column(header="detail", optional=True),
            ),
            rows=tuple(rows),
        )
    ]
    # Once resolved by hand, the regions are history; the static checks are what matters.
    notes = [
        line
        for hunk in (refresh.conflicting_hunks if refresh.status != "resolved" else ())
        for number, change in enumerate(hunk.conflicts, start=1)
        for line in _region_notes(refresh, hunk, number, change)
    ]
    if run.findings is not None:
        path = f"{refresh.target_label}:Dockerfile (refreshed)"
        results += finding_results(run.findings, group=f"static.{refresh.target_label}", path=path)
        tables.append(findings_table(STATIC_TITLE, [(refresh.target_label, f) for f in run.findings]))
    notes += [f"note: {note}" for note in refresh.notes]
    notes.append(reason)
    return Outcome(
        command="refresh",
        frame=frame,
        title=f"refresh {refresh.patch.name} onto {refresh.target_label}",
        results=tuple(results),
        tables=tuple(tables),
        notes=tuple(notes),
        data={
            "patch": patch_shown,
            "ref": refresh.target_label,
            "refresh_status": refresh.status,
            "summary": refresh.summary(),
            "output": str(run.output) if run.output else None,
            "conflicts_file": str(run.conflicts_file) if run.conflicts_file else None,
            "files": [
                {
                    "path": f.path,
                    "preimage_blob": f.base_blob,
                    "ref_blob": f.target_blob,
                    "conflicts": f.conflicts,
                    "refreshed_blob": git_blob_id(f.result) if f.result is not None else None,
                }
                for f in refresh.files
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
                for h in refresh.hunks
            ],
            "static": [asdict(f) for f in run.findings] if run.findings is not None else None,
            "notes": list(refresh.notes),
        },
    )
