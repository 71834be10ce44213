"""The JSON form of each analysis and patch record a command reports: the only place those records become JSON.

Lower layers return plain records; the views put these forms into an Outcome's JSON body (the README documents
each field per command). The build layer's report files (`report.json`, `profile.json`, `sampler.json`) are the
exception, kept beside their records on purpose: a build writes them into its own directory as it finishes (a
run stopped later still leaves them), and the build layer reads them back (`TraceOutcome.from_json`, a profile's
figures rendered again), so each file's writer and reader stay in one module.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Types only: `status` renders hunks without loading the static checks behind compat and verify.
    from harness.analysis.bump import BumpPlan
    from harness.analysis.compat import CompatResult, RefError
    from harness.analysis.drift import Drift
    from harness.analysis.patched import StaticSummary
    from harness.analysis.release_profile import ReleaseProfile
    from harness.analysis.submodule_checks import Suggestion, SuperprojectCheck
    from harness.analysis.verdicts import VerdictCache
    from harness.patch.hunks import HunkReport

JsonObject = dict[str, object]


def hunk_json(hunk: HunkReport) -> JsonObject:
    return {
        "file": hunk.file,
        "index": hunk.index,
        "header": hunk.header,
        "patch_line": hunk.patch_line,
        "expected_start": hunk.expected_start,
        "expected_length": hunk.expected_length,
        "status": hunk.status,
        "found_at": hunk.found_at,
        "offset": hunk.offset,
        "mismatch_line": hunk.mismatch_line,
        "mismatch_expected": hunk.mismatch_expected,
        "mismatch_found": hunk.mismatch_found,
        "refused": hunk.refused,
    }


def static_summary_json(static: StaticSummary) -> JsonObject:
    return {
        "ok": static.ok,
        "checks": static.checks,
        "failed": [{"check": f.check, "line": f.line, "message": f.message} for f in static.failed],
    }


def drift_json(drift: Drift) -> JsonObject:
    return {
        "pin": drift.pin,
        "differs": drift.differs,
        "compared": drift.compared,
        "changed_lines": drift.changed_lines,
        "diff": drift.diff,
        "note": drift.note,
    }


def release_profile_json(profile: ReleaseProfile) -> JsonObject:
    settings: JsonObject = {key: {"value": s.value, "source": s.source} for key, s in profile.settings.items()}
    return settings | {"found": profile.found}


def compat_json(result: CompatResult) -> JsonObject:
    variant = result.choice.variant
    return {
        "ref": result.ref,
        "upstream_commit": result.upstream_commit,
        "dockerfile_blob": result.dockerfile_blob,
        "patch": result.patch,
        "variant": {
            "name": variant.name,
            "range": variant.range_text,
            "shape": variant.shape,
            "basis": result.choice.basis,
            "version_tag": result.choice.version_tag,
            "reason": result.choice.reason,
        },
        "state": str(result.state),
        "expected": result.expected,
        "patched_blob": result.patched_blob,
        "expected_patched_blob": result.expected_patched_blob,
        "ok": result.ok,
        "reason": result.reason,
        "static": static_summary_json(result.static) if result.static else None,
        "drift": drift_json(result.drift) if result.drift else None,
        "upstream_release_profile": release_profile_json(result.release_profile) if result.release_profile else None,
        "hunks": [hunk_json(hunk) for hunk in result.hunks],
        "duration": round(result.duration, 6),
    }


def ref_error_json(error: RefError) -> JsonObject:
    return {"ref": error.ref, "state": "error", "ok": False, "reason": error.reason}


def suggestion_json(suggestion: Suggestion) -> JsonObject:
    return asdict(suggestion)


def superproject_json(check: SuperprojectCheck) -> JsonObject:
    sub = check.submodule
    return {
        "superproject": str(check.superproject),
        "submodule": sub.path,
        "recorded_commit": sub.recorded_commit,
        "committed_commit": sub.committed_commit,
        "checked_out": sub.checked_out,
        "ref": check.ref,
        "tag": check.tag,
        "source": check.source,
        "ok": check.ok,
        "profile_change": check.profile_change,
        "latest": check.latest,
        "up_to_date": check.up_to_date,
    }


def bump_plan_json(plan: BumpPlan) -> JsonObject:
    return {
        "submodule": plan.submodule.path,
        "from": plan.from_label,
        "to": plan.to_label,
        "commit": plan.commit,
        "latest": plan.latest,
        "fetch": plan.needs_fetch,
        "patch": plan.patch_shown,
        "take": plan.choice.how if plan.choice else None,
        "refused": list(plan.refused),
        "steps": plan.steps(),
    }


def verdicts_json(verdicts: VerdictCache) -> JsonObject:
    return {
        "reuse": verdicts.reuse,
        "computed": verdicts.computed,
        "reused": verdicts.reused,
        "store": str(verdicts.root),
    }
