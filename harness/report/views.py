"""Each command's findings as one Outcome: its results, its tables and notes, its JSON fields.

The JSON shape of each command is documented in the README ("JSON reports"); every one
carries the common fields of `Outcome.document()` (`schema_version`, `command`, `status`,
`ok`, `results`) and then its own.

Every command's view is here, about 400 lines together, so that a state, a verdict and a
column read the same in every command's table; each view is a short function of its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from harness.analysis.release_profile import compare_with_defaults, describe_change, lto_words, matches_a_default
from harness.config.pins import shown_path
from harness.config.series import tag_version
from harness.knobs import KNOB_DEFAULTS
from harness.patch.apply import PatchReport, SeriesConflict, SeriesReport, SeriesResult, State, label, named
from harness.report.json_forms import (
    JsonObject,
    compat_json,
    hunk_json,
    ref_error_json,
    suggestion_json,
    superproject_json,
)
from harness.report.run_frame import latest_frame
from harness.results import (
    NO_FRAME,
    Column,
    Frame,
    Location,
    Outcome,
    OutcomeParts,
    Result,
    Row,
    Status,
    Table,
    status_of,
)

if TYPE_CHECKING:
    # Types only: `status` renders a tree's outcome without loading the static checks behind compat and verify.
    from pathlib import Path

    from harness.analysis.checkout_target import TreeTarget
    from harness.analysis.compat import CompatResult, RefError, StaticResult
    from harness.analysis.findings import Finding
    from harness.analysis.submodule_checks import SuperprojectCheck
    from harness.errors import CheckFailed
    from harness.patch.hunks import HunkReport
    from harness.patch.patchfile import Patch

STATIC_TITLE = "Static checks of the patched Dockerfile"

# -- hunks and findings ---------------------------------------------------------------------------


def hunk_cell(hunk: HunkReport) -> str:
    if hunk.status == "offset":
        return f"#{hunk.index} offset {hunk.offset:+d}"
    if hunk.status == "conflict" and hunk.refused is not None:
        return f"#{hunk.index} refused by git apply"
    if hunk.status == "conflict":
        return f"#{hunk.index} conflict at line {hunk.mismatch_line}"
    return f"#{hunk.index} {hunk.status}"


def first_conflict(hunks: Sequence[HunkReport], patch: str) -> Location | None:
    """Where a user fixes a conflict: the `@@` line of the first hunk that does not apply, in their patch."""
    conflict = next((h for h in hunks if h.status == "conflict"), None)
    return Location(path=patch, line=conflict.patch_line) if conflict else None


def hunk_lines(hunks: Sequence[HunkReport]) -> str:
    return "\n".join(hunk.describe() for hunk in hunks)


def finding_results(findings: Sequence[Finding], *, group: str, path: str) -> list[Result]:
    """One result per finding; a check that makes several findings (one per scenario) is numbered."""
    totals = {check: sum(1 for f in findings if f.check == check) for check in {f.check for f in findings}}
    seen: dict[str, int] = {}
    results = []
    for finding in findings:
        seen[finding.check] = seen.get(finding.check, 0) + 1
        result = finding.result(group=group, path=path)
        if totals[finding.check] > 1:
            result = Result(
                **{**vars(result), "name": f"{finding.check} [{seen[finding.check]}/{totals[finding.check]}]"}
            )
        results.append(result)
    return results


def findings_table(title: str, rows: Sequence[tuple[str, Finding]]) -> Table:
    return Table(
        title=title,
        columns=(Column(header="ref"), Column(header="check"), Column(header="line"), Column(header="message")),
        rows=tuple(Row(cells=(ref, f.check, str(f.line or ""), f.message), status=status_of(f.ok)) for ref, f in rows),
    )


# -- compat -----------------------------------------------------------------------------------------


def _static_cell(result: CompatResult) -> str:
    if result.static is None:
        return "-"
    if result.static.ok:
        return f"ok ({result.static.checks})"
    return "failed: " + ", ".join(dict.fromkeys(f.check for f in result.static.failed))


def _drift_cell(result: CompatResult) -> str:
    drift = result.drift
    if drift is None:
        return "-"
    if drift.differs is None:
        return f"{drift.pin} not compared"
    if drift.compared == "lock":
        return "differs from its lock" if drift.differs else "matches its lock"
    return f"{drift.changed_lines} lines differ from {drift.pin}" if drift.differs else f"same as {drift.pin}"


def _drift_sentence(result: CompatResult) -> str:
    drift = result.drift
    assert drift is not None
    if drift.differs:
        return f"the patched Dockerfile differs from {drift.pin}'s ({drift.compared}): {drift.changed_lines} line(s)"
    return f"the patched Dockerfile is {drift.pin}'s ({drift.compared})"


def _profile_cell(result: CompatResult) -> str:
    profile = result.release_profile
    if profile is None:
        return "-"
    return f"{lto_words(profile.lto)}, {profile.codegen_units} cgu"


def _plain_choice(result: CompatResult) -> bool:
    """A release tag inside its variant's range: the table says all there is to say."""
    choice = result.choice
    # A forced patch (--patch, or a superproject's own) is named in the column: nothing more to say.
    return choice.basis in ("only", "forced") or (choice.basis == "in-range" and choice.version_tag == result.ref)


def _static_status(findings: Sequence[Finding]) -> Status:
    """ERROR when the Dockerfile could not be checked at all, else whether every check held."""
    if any(f.error for f in findings):
        return Status.ERROR
    return status_of(all(f.ok for f in findings))


def compat_results(result: CompatResult) -> list[Result]:
    """Per ref: the patch's state (against the pin), the static checks, the post-image, upstream's profile."""
    group = f"compat.{result.ref}"
    static_ok = result.static is None or result.static.ok
    # A static failure alone is reported by its own result, not twice.
    results = [
        Result(
            name="state",
            status=status_of(result.ok or not static_ok),
            reason=result.reason if not result.ok or static_ok else f"{result.state}: {result.reason}",
            group=group,
            duration=result.duration,
            detail="\n".join(
                [f"variant {result.choice.variant.name}: {result.choice.reason}", f"patch {result.patch}"]
                + [hunk.describe() for hunk in result.hunks]
            ),
            location=first_conflict(result.hunks, result.patch),
        )
    ]
    if result.static is not None:
        failed = ", ".join(dict.fromkeys(f.check for f in result.static.failed))
        results.append(
            Result(
                name="static checks",
                status=_static_status(result.static.findings),
                reason=f"{result.static.checks} checks" + (f", failing: {failed}" if failed else ", all hold"),
                group=group,
                detail="\n".join(f"{f.check} (line {f.line}): {f.message}" for f in result.static.failed),
            )
        )
    if result.drift is not None:
        drift = result.drift
        # Drift from a nearby pin is news, not a failure; from the ref's own lock, `state` already failed.
        results.append(
            Result(
                name="post-image",
                status=Status.OK,
                reason=drift.note or _drift_sentence(result),
                group=group,
                detail=drift.diff or "",
            )
        )
    if result.release_profile is not None:
        results.append(
            Result(
                name="upstream-release-profile",
                status=Status.OK,
                reason=compare_with_defaults(result.release_profile, KNOB_DEFAULTS, ref=result.ref),
                group=group,
                detail=result.release_profile.describe(),
            )
        )
    return results


def compat_table(results: Sequence[CompatResult], *, title: str = "Patch compatibility") -> Table:
    columns = (
        Column(header="ref"),
        Column(header="upstream commit", optional=True),
        Column(header="Dockerfile", optional=True),
        Column(header="variant"),
        Column(header="state"),
        Column(header="expected", optional=True),
        Column(header="hunks"),
        Column(header="static"),
        Column(header="post-image", optional=True),
        Column(header="upstream profile", optional=True),
    )
    rows = tuple(
        Row(
            cells=(
                r.ref,
                r.upstream_commit[:12],
                r.dockerfile_blob[:12],
                r.choice.variant.name if _plain_choice(r) else f"{r.choice.variant.name} *",
                str(r.state),
                r.expected or "(no pin)",
                ", ".join(hunk_cell(h) for h in r.hunks),
                _static_cell(r),
                _drift_cell(r),
                _profile_cell(r),
            ),
            status=_static_status(r.static.findings) if r.static and not r.static.ok else status_of(r.ok),
        )
        for r in results
    )
    return Table(title=title, columns=columns, rows=rows)


def profile_changes(results: Sequence[CompatResult]) -> list[str]:
    """Where upstream's release profile changes between consecutive releases of the run."""
    released = sorted(
        ((version, r) for r in results if r.release_profile and (version := tag_version(r.ref))),
        key=lambda item: item[0],
    )
    notes = []
    for (_, before), (_, after) in itertools.pairwise(released):
        assert before.release_profile is not None and after.release_profile is not None
        line = describe_change(before.release_profile, after.release_profile, old=before.ref, new=after.ref)
        if line:
            notes.append(line)
    return notes


def lighter_upstream(results: Sequence[CompatResult], *, shown: int = 3) -> list[str]:
    """Refs whose upstream already builds a knob as lightly as the patch's default: news for whoever keeps the patch."""
    matching = [
        r for r in results if r.release_profile is not None and matches_a_default(r.release_profile, KNOB_DEFAULTS)
    ]
    notes = []
    for r in matching[:shown]:
        assert r.release_profile is not None
        notes.append(f"{r.ref}: {compare_with_defaults(r.release_profile, KNOB_DEFAULTS, ref=r.ref)}")
    if len(matching) > shown:
        notes.append(f"... and {len(matching) - shown} more refs like these (each in --json and --junit)")
    return notes


def compat_notes(results: Sequence[CompatResult]) -> list[str]:
    notes = []
    for r in results:
        if not _plain_choice(r):
            notes.append(f"* {r.choice.reason}")
        if r.drift is not None and r.drift.note:
            notes.append(f"{r.ref}: {r.drift.note}")
        if r.drift is not None and r.drift.compared == "text" and r.drift.differs:
            notes.append(
                f"{r.ref}: the patched Dockerfile differs from {r.drift.pin}'s in {r.drift.changed_lines} lines "
                "(the diff is in the JSON)"
            )
        if not r.ok:
            notes.append(f"{r.ref}: {r.reason}")
            notes += [f"  {h.describe()}" for h in r.hunks if h.status == "conflict"]
            notes += [f"  {f.check} (line {f.line}): {f.message}" for f in (r.static.failed if r.static else ())]
    return [*notes, *profile_changes(results), *lighter_upstream(results)]


def _ref_error_result(error: RefError) -> Result:
    return Result(name="state", status=Status.ERROR, reason=error.reason, group=f"compat.{error.ref}")


def compat_outcome(
    results: Sequence[CompatResult], *, upstream: str, errors: Sequence[RefError] = (), frame: Frame = NO_FRAME
) -> Outcome:
    """Every ref checked, then each one that could not be (an `error` result of its own)."""
    return Outcome(
        frame=frame,
        command="compat",
        title="Patch compatibility",
        results=(*(r for c in results for r in compat_results(c)), *(_ref_error_result(e) for e in errors)),
        tables=(compat_table(results),),
        notes=(*compat_notes(results), *(f"{e.ref}: not checked: {e.reason}" for e in errors)),
        data={
            "mode": "pins",
            "upstream": upstream,
            "superproject": None,
            "refs": [*(compat_json(r) for r in results), *(ref_error_json(e) for e in errors)],
        },
    )


# -- check --------------------------------------------------------------------------------------------


def check_outcome(results: Sequence[StaticResult], *, frame: Frame = NO_FRAME) -> Outcome:
    return Outcome(
        frame=frame,
        command="check",
        title=STATIC_TITLE,
        results=tuple(
            r
            for s in results
            for r in finding_results(s.findings, group=f"static.{s.ref}", path=f"{s.ref}:Dockerfile (patched)")
        ),
        tables=(
            findings_table(
                "Static checks of the patched Dockerfile", [(s.ref, f) for s in results for f in s.findings]
            ),
        ),
        data={
            "refs": [
                {"ref": s.ref, "patch": s.patch, "ok": s.ok, "findings": [asdict(f) for f in s.findings]}
                for s in results
            ]
        },
    )


# -- a superproject -----------------------------------------------------------------------------------


def superproject_outcome(check: SuperprojectCheck, *, command: str, frame: Frame = NO_FRAME) -> Outcome:
    """`verify` (the recorded commit, with the static checks) or `compat` in a superproject (a bump, or not)."""
    return Outcome(
        command=command,
        frame=latest_frame(check.latest, source=check.latest_from).within(frame),
        **superproject_parts(check, command=command),
    )


def superproject_parts(check: SuperprojectCheck, *, command: str) -> OutcomeParts:
    """The title, results, tables, notes and JSON of a superproject's check, for the Outcome of the command that
    made it (`bump` puts its own first)."""
    sub = check.submodule
    state = [f"records {sub.recorded_commit[:12]}"]
    if sub.bump_staged:
        state.append(f"staged; HEAD records {(sub.committed_commit or '')[:12]}")
    if sub.checked_out is None:
        state.append("not checked out")
    elif not sub.at_recorded_commit:
        state.append(f"checked out at {sub.checked_out[:12]}")
    compat = check.compat
    results = compat_results(compat)
    tables = [compat_table([compat], title=f"{sub.path}: {compat.ref} from {check.source}")]
    if check.static is not None:
        path = f"{compat.ref}:Dockerfile (patched)"
        results = [r for r in results if r.name != "static checks"]
        results += finding_results(check.static.findings, group=f"static.{compat.ref}", path=path)
        # Every finding is in the JSON and the JUnit; the terminal shows the ones to act on.
        failed = [(compat.ref, f) for f in check.static.findings if not f.ok]
        if failed:
            tables.append(findings_table("Static checks that fail on the patched Dockerfile", failed))
    notes = [f"superproject: {check.superproject}", f"submodule: {sub.path} ({'; '.join(state)})"]
    if check.static is not None and check.static.ok:
        notes.append(f"static checks: all {len(check.static.findings)} hold (each is listed in --json and --junit)")
    notes += [f"  {h.describe()}" for h in compat.hunks]
    if not compat.ok:
        notes.append(f"{compat.ref}: {compat.reason}")
    if check.profile_change:
        notes.append(check.profile_change)
    notes += lighter_upstream([compat])
    if check.suggestion is not None:
        notes += check.suggestion.lines()
    series = _superproject_series(check, group=f"{command}.{compat.ref}")
    results += series.results
    tables += series.tables
    notes += series.notes
    if check.up_to_date:
        # Nothing to bump: the patch against the recorded commit is verify's question, not this one's.
        reason = f"up to date at {compat.ref}: {sub.path} already records the newest release"
        results = [Result(name="bump", status=Status.OK, reason=reason, group=f"bump.{compat.ref}")]
        notes = [reason, *notes]
        if not compat.ok:
            notes.append("the patch does not fit the recorded commit: `mas-harness verify` says what to do")
    return OutcomeParts(
        title=f"{command} {sub.path} at {compat.ref}",
        results=tuple(results),
        tables=tuple(tables),
        notes=tuple(notes),
        data={
            "mode": "superproject",
            "upstream": check.source,
            "superproject": superproject_json(check),
            "refs": [compat_json(compat)],
            "static": None
            if check.static is None
            else {"ok": check.static.ok, "findings": [asdict(f) for f in check.static.findings]},
            "suggestion": suggestion_json(check.suggestion) if check.suggestion else None,
            **series.data,
        },
    )


@dataclass(frozen=True, kw_only=True)
class _SeriesParts:
    results: list[Result]
    tables: list[Table]
    notes: list[str]
    data: JsonObject


def _superproject_series(check: SuperprojectCheck, *, group: str) -> _SeriesParts:
    """A series' own part of a superproject's check: a result per patch and hunk, its table, notes and JSON (for
    one patch, nothing: the compat result is the patch's)."""
    series = check.series
    if series is None:
        return _SeriesParts(results=[], tables=[], notes=[], data={})
    shown = [shown_path(patch.path, check.superproject) for patch in series.patches]
    notes = [f"{label(series.patches, i)}: {report.state} ({report.reason})" for i, report in enumerate(series.reports)]
    if not check.series_fits:
        # The harness's variants are for the Dockerfile patch: the others are the user's to rebase.
        notes.append(
            f"{check.compat.ref}: a patch of the series does not apply there; the harness has variants for "
            f"{check.compat.patch} only, so rebase the others by hand"
        )
    return _SeriesParts(
        results=[r for i in range(len(shown)) for r in _series_patch_results(series, i, group=group, shown=shown[i])],
        tables=[_series_table(series)],
        notes=notes,
        data={"patches": _series_json(series, shown)},
    )


# -- a checkout: status, apply, revert ----------------------------------------------------------------


def _where(hunk: HunkReport) -> str:
    return hunk.describe().split(": ", 1)[-1]


def _hunk_table(report: PatchReport) -> Table:
    return Table(
        title=f"state: {report.state}",
        columns=(Column(header="hunk"), Column(header="where")),
        rows=tuple(
            Row(
                cells=(f"{h.file} #{h.index}", h.describe().split(": ", 1)[-1]),
                status=status_of(h.status != "conflict"),
            )
            for h in report.hunks
        ),
    )


def tree_outcome(
    command: str,
    target: TreeTarget,
    change: SeriesReport | SeriesResult | SeriesConflict,
    *,
    duration: float = 0.0,
) -> Outcome:
    """`status` (a report) passes when the patch applies or is applied; `apply`/`revert` when they did (or had
    nothing to do), and fail when the patch was refused (a conflict). A series passes as a whole, and each of
    its patches and their hunks is a result of its own too."""
    report = change if isinstance(change, SeriesReport) else change.report
    action = change if isinstance(change, SeriesResult) else None
    refused = str(change) if isinstance(change, SeriesConflict) else None
    if command == "status":
        ok = report.state in (State.APPLIES, State.APPLIED)
        reason = f"{report.state}: {report.reason}"
    else:
        ok = refused is None
        reason = refused or (action.message if action else "")
    verdict = _Verdict(
        command=command,
        tree=target.tree,
        ok=ok,
        reason=reason,
        action=action.action if action else ("refused" if refused else None),
        duration=duration,
    )
    if len(report.patches) == 1:
        return _patch_outcome(verdict, report.patches[0], report.reports[0])
    return _series_outcome(verdict, report)


@dataclass(frozen=True, kw_only=True)
class _Verdict:
    """What status, apply and revert decided, whatever the number of patches."""

    command: str
    tree: Path
    ok: bool
    reason: str
    action: str | None
    duration: float

    @property
    def group(self) -> str:
        # A JUnit classname: the checkout's directory name reads better there than a path full of dots and slashes.
        return f"{self.command}.{self.tree.resolve().name}"


def _patch_outcome(verdict: _Verdict, patch: Patch, report: PatchReport) -> Outcome:
    command, tree = verdict.command, verdict.tree
    shown_patch = str(patch.path)
    result = Result(
        name=command,
        status=status_of(verdict.ok),
        reason=verdict.reason,
        group=verdict.group,
        duration=verdict.duration,
        detail=hunk_lines(report.hunks),
        location=None if verdict.ok else first_conflict(report.hunks, shown_patch),
    )
    notes = [f"patch: {shown_patch}", f"checkout: {tree}", f"state: {report.state} ({report.reason})"]
    if command != "status":
        notes.append(verdict.reason)
    return Outcome(
        command=command,
        title=f"{command} {patch.path.name} in {tree}",
        results=(result,),
        tables=(_hunk_table(report),),
        notes=tuple(notes),
        data={
            "checkout": str(tree),
            "patch": shown_patch,
            "state": str(report.state),
            "reason": report.reason,
            "action": verdict.action,
            "hunks": [hunk_json(h) for h in report.hunks],
        },
    )


def _patch_status(report: PatchReport) -> Status:
    """A patch of a series on its own: fine where it applies or is applied, not checked after one that does not."""
    if report.state is State.NOT_CHECKED:
        return Status.SKIPPED
    return status_of(report.state in (State.APPLIES, State.APPLIED))


def _series_patch_results(series: SeriesReport, index: int, *, group: str, shown: str) -> list[Result]:
    """One result for the patch (`shown` as its path), then one per hunk; a conflict points at its hunk's `@@` line,
    once."""
    report = series.reports[index]
    name = label(series.patches, index)
    conflicts = any(h.status == "conflict" for h in report.hunks)
    failed = _patch_status(report) is Status.FAILED
    results = [
        Result(
            name=name,
            status=_patch_status(report),
            reason=f"{report.state}: {report.reason}",
            group=group,
            detail=hunk_lines(report.hunks),
            # The patch itself, where no hunk result points at a line of it (upstreamed, refused as a whole).
            location=Location(path=shown) if failed and not conflicts else None,
        )
    ]
    results += [
        Result(
            name=f"{name} {hunk.file} #{hunk.index}",
            status=status_of(hunk.status != "conflict"),
            reason=hunk.describe(),
            group=group,
            location=Location(path=shown, line=hunk.patch_line) if hunk.status == "conflict" else None,
        )
        for hunk in report.hunks
    ]
    return results


def _series_json(series: SeriesReport, shown: Sequence[str]) -> list[JsonObject]:
    return [
        {
            "patch": path,
            "state": str(report.state),
            "reason": report.reason,
            "hunks": [hunk_json(h) for h in report.hunks],
        }
        for path, report in zip(shown, series.reports, strict=True)
    ]


def _series_table(series: SeriesReport) -> Table:
    rows = []
    for index, report in enumerate(series.reports):
        name = label(series.patches, index)
        rows += [
            Row(
                cells=(name, str(report.state), f"{h.file} #{h.index}", _where(h)),
                status=status_of(h.status != "conflict"),
            )
            for h in report.hunks
        ]
        if not report.hunks:
            rows.append(Row(cells=(name, str(report.state), "", report.reason), status=_patch_status(report)))
    return Table(
        title=f"state: {series.state}",
        columns=(Column(header="patch"), Column(header="state"), Column(header="hunk"), Column(header="where")),
        rows=tuple(rows),
    )


def _series_outcome(verdict: _Verdict, series: SeriesReport) -> Outcome:
    command, tree = verdict.command, verdict.tree
    patches = series.patches
    overall = Result(
        name=command,
        status=status_of(verdict.ok),
        reason=verdict.reason,
        group=verdict.group,
        duration=verdict.duration,
        detail="\n".join(f"{label(patches, i)}: {r.state}: {r.reason}" for i, r in enumerate(series.reports)),
    )
    notes = [f"patch {i + 1} of {len(patches)}: {patch.path}" for i, patch in enumerate(patches)]
    notes += [f"checkout: {tree}", f"state: {series.state} ({series.reason})"]
    notes += [f"  {label(patches, i)}: {r.state} ({r.reason})" for i, r in enumerate(series.reports)]
    if command != "status":
        notes.append(verdict.reason)
    return Outcome(
        command=command,
        title=f"{command} {named(patches)} in {tree}",
        results=(
            overall,
            *(
                r
                for i, patch in enumerate(patches)
                for r in _series_patch_results(series, i, group=verdict.group, shown=str(patch.path))
            ),
        ),
        tables=(_series_table(series),),
        notes=tuple(notes),
        data={
            "checkout": str(tree),
            "state": str(series.state),
            "reason": series.reason,
            "action": verdict.action,
            "patches": _series_json(series, [str(patch.path) for patch in patches]),
        },
    )


# -- a command a failed check stopped -----------------------------------------------------------------


def stopped_outcome(command: str, failed: CheckFailed) -> Outcome:
    """The one result of a command a failed check stopped before it had results of its own (a submodule at another
    commit than recorded, a bump whose commit a hook refused): that check, failed."""
    reason = " ".join(str(failed).split())
    return Outcome(
        command=command,
        title=f"{command} stopped",
        results=(Result(name=command, status=Status.FAILED, reason=reason, group=command),),
    )
