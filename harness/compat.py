"""Does the patch fit a given upstream ref? Pins, cache and engine combined into results as data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.config import Pin, Pins
from harness.errors import PinMismatch
from harness.patching import HunkReport, Patch, PatchReport, State, evaluate, git_blob_id, patched_contents
from harness.static import Finding, check_patched
from harness.upstream import DOCKERFILE, ResolvedRef, UpstreamCache


@dataclass(frozen=True, kw_only=True)
class CompatResult:
    ref: str
    upstream_commit: str
    dockerfile_blob: str
    patch: str
    state: State
    expected: str | None
    """The pinned outcome; None for a ref with no pin."""
    patched_blob: str | None
    expected_patched_blob: str | None
    hunks: tuple[HunkReport, ...]
    ok: bool
    reason: str

    def as_json(self) -> dict[str, object]:
        return {
            "ref": self.ref,
            "upstream_commit": self.upstream_commit,
            "dockerfile_blob": self.dockerfile_blob,
            "patch": self.patch,
            "state": str(self.state),
            "expected": self.expected,
            "patched_blob": self.patched_blob,
            "expected_patched_blob": self.expected_patched_blob,
            "ok": self.ok,
            "reason": self.reason,
            "hunks": [
                {
                    "file": h.file,
                    "index": h.index,
                    "header": h.header,
                    "expected_start": h.expected_start,
                    "expected_length": h.expected_length,
                    "status": h.status,
                    "found_at": h.found_at,
                    "offset": h.offset,
                    "mismatch_line": h.mismatch_line,
                    "mismatch_expected": h.mismatch_expected,
                    "mismatch_found": h.mismatch_found,
                }
                for h in self.hunks
            ],
        }


def verify_pin(resolved: ResolvedRef, pin: Pin | None) -> None:
    """A pinned tag whose Dockerfile changed was moved or re-tagged upstream: a hard error."""
    if pin is not None and resolved.dockerfile_blob != pin.dockerfile_blob:
        raise PinMismatch(
            f"{pin.tag}: upstream Dockerfile is blob {resolved.dockerfile_blob}, the pin says "
            f"{pin.dockerfile_blob} (was the tag moved or re-tagged upstream?)"
        )


@dataclass(frozen=True, kw_only=True)
class PatchedRef:
    """A ref's Dockerfile, verified against its pin, with the chosen patch evaluated (and applied, off the tree)."""

    resolved: ResolvedRef
    pin: Pin | None
    patch_path: Path
    original: bytes
    report: PatchReport
    patched: bytes | None
    """The Dockerfile after the patch, when it applies."""


def patch_ref(
    cache: UpstreamCache, ref: str, *, pins: Pins, forced_patch: Path | None = None, refresh: bool = False
) -> PatchedRef:
    resolved = cache.resolve(ref, refresh=refresh)
    pin = pins.get(ref)
    verify_pin(resolved, pin)
    patch_path = forced_patch or pins.patch_path(pin.patch if pin else pins.default_patch)
    patch = Patch.load(patch_path)
    original = cache.read_blob(resolved.dockerfile_blob)
    contents: dict[str, bytes | None] = {DOCKERFILE: original}
    report = evaluate(contents, patch, committed=contents)
    patched = patched_contents(patch, contents)[DOCKERFILE] if report.state == State.APPLIES else None
    return PatchedRef(
        resolved=resolved, pin=pin, patch_path=patch_path, original=original, report=report, patched=patched
    )


def check_ref(
    cache: UpstreamCache,
    ref: str,
    *,
    pins: Pins,
    forced_patch: Path | None = None,
    refresh: bool = False,
) -> CompatResult:
    patched_ref = patch_ref(cache, ref, pins=pins, forced_patch=forced_patch, refresh=refresh)
    resolved, pin, patch_path, report = (
        patched_ref.resolved,
        patched_ref.pin,
        patched_ref.patch_path,
        patched_ref.report,
    )
    patched_blob = git_blob_id(patched_ref.patched) if patched_ref.patched is not None else None
    expected = pin.expected if pin and forced_patch is None else None
    expected_patched = pin.patched_blob if pin and forced_patch is None else None

    ok, reason = _judge(report.state, expected, patched_blob, expected_patched, report.reason)
    return CompatResult(
        ref=ref,
        upstream_commit=resolved.upstream_commit,
        dockerfile_blob=resolved.dockerfile_blob,
        patch=_display_path(patch_path, pins),
        state=report.state,
        expected=expected,
        patched_blob=patched_blob,
        expected_patched_blob=expected_patched,
        hunks=report.hunks,
        ok=ok,
        reason=reason,
    )


def _judge(
    state: State, expected: str | None, patched_blob: str | None, expected_patched: str | None, reason: str
) -> tuple[bool, str]:
    if expected is None:
        ok = state in (State.APPLIES, State.APPLIED)
        return ok, reason if ok else f"{state}: {reason}"
    if state != expected:
        return False, f"expected {expected}, got {state}: {reason}"
    if expected_patched is not None and patched_blob != expected_patched:
        return False, (
            f"applies, but the patched Dockerfile is blob {patched_blob}, the pin locks {expected_patched} "
            "(post-image drift: review the result and update the pin)"
        )
    return True, reason


def _display_path(path: Path, pins: Pins) -> str:
    try:
        return str(path.resolve().relative_to(pins.source.parent.resolve()))
    except ValueError:
        return str(path)


@dataclass(frozen=True, kw_only=True)
class StaticResult:
    ref: str
    patch: str
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return all(finding.ok for finding in self.findings)


def static_check_ref(cache: UpstreamCache, ref: str, *, pins: Pins, forced_patch: Path | None = None) -> StaticResult:
    """Patch the ref's Dockerfile (off the tree) and run the semantic and lint checks on the result."""
    patched_ref = patch_ref(cache, ref, pins=pins, forced_patch=forced_patch)
    shown = _display_path(patched_ref.patch_path, pins)
    if patched_ref.patched is None:
        report = patched_ref.report
        finding = Finding(check="patch-applies", ok=False, line=None, message=f"{report.state}: {report.reason}")
        return StaticResult(ref=ref, patch=shown, findings=(finding,))
    findings = check_patched(
        patched_ref.patched.decode(), pristine=patched_ref.original.decode(), name=f"{ref}:{DOCKERFILE}"
    )
    return StaticResult(ref=ref, patch=shown, findings=tuple(findings))


def check_refs(
    cache: UpstreamCache, refs: Iterable[str], *, pins: Pins, forced_patch: Path | None = None
) -> list[CompatResult]:
    return [check_ref(cache, ref, pins=pins, forced_patch=forced_patch) for ref in refs]
