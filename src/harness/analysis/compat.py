"""Does the patch fit a given upstream ref? Pins, cache and engine combined into results as data."""

from __future__ import annotations

import difflib
import time
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.dockerfile import DockerfileError
from harness.analysis.findings import Finding
from harness.analysis.release_profile import ReleaseProfile, release_profile_of
from harness.analysis.static import check_patched
from harness.config.pins import Pin, Pins, shown_path
from harness.config.series import Choice, Variant, newest_release, tag_version
from harness.errors import BadInput, PinMismatch, UpstreamError
from harness.files import atomic_write, refuse_clobber
from harness.patch.engine import PatchReport, State, evaluate, patched_contents
from harness.patch.hunks import HunkReport
from harness.patch.patchfile import Patch, git_blob_id
from harness.upstream.cache import DOCKERFILE, ResolvedRef, UpstreamCache

# A unified diff longer than this is cut in the JSON report; the line count stays exact.
DIFF_LINES_SHOWN = 60


@dataclass(frozen=True, kw_only=True)
class StaticSummary:
    """The static checks of a patched Dockerfile, every finding kept; the compat report shows the failed ones."""

    findings: tuple[Finding, ...]

    @property
    def checks(self) -> int:
        return len(self.findings)

    @property
    def failed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if not f.ok)

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_json(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checks": self.checks,
            "failed": [{"check": f.check, "line": f.line, "message": f.message} for f in self.failed],
        }


@dataclass(frozen=True, kw_only=True)
class Drift:
    """The patched Dockerfile of a ref against the nearest pin's (post-image drift)."""

    pin: str
    differs: bool | None
    """None when the pin's Dockerfile could not be read from this upstream (see `note`)."""
    compared: str
    """`lock`: the ref is that pin, compared by blob id with its lock; `text`: the two patched files compared;
    `unavailable`: not compared."""
    changed_lines: int | None
    """Lines removed plus lines added going from the pin's patched file to the ref's (text comparison only)."""
    diff: str | None
    """A unified diff, cut after DIFF_LINES_SHOWN lines."""
    note: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "pin": self.pin,
            "differs": self.differs,
            "compared": self.compared,
            "changed_lines": self.changed_lines,
            "diff": self.diff,
            "note": self.note,
        }


@dataclass(frozen=True, kw_only=True)
class CompatResult:
    ref: str
    upstream_commit: str
    dockerfile_blob: str
    patch: str
    choice: Choice
    state: State
    expected: str | None
    """The pinned outcome; None for a ref with no pin."""
    patched_blob: str | None
    expected_patched_blob: str | None
    hunks: tuple[HunkReport, ...]
    static: StaticSummary | None
    """The static checks of the patched Dockerfile; None when the patch does not apply."""
    drift: Drift | None
    """Against the nearest pin of the same variant; None when the patch does not apply or no pin compares."""
    release_profile: ReleaseProfile | None
    """Upstream's own [profile.release] at the ref."""
    ok: bool
    reason: str
    duration: float = 0.0

    def as_json(self) -> dict[str, object]:
        variant = self.choice.variant
        return {
            "ref": self.ref,
            "upstream_commit": self.upstream_commit,
            "dockerfile_blob": self.dockerfile_blob,
            "patch": self.patch,
            "variant": {
                "name": variant.name,
                "range": variant.range_text,
                "shape": variant.shape,
                "basis": self.choice.basis,
                "version_tag": self.choice.version_tag,
                "reason": self.choice.reason,
            },
            "state": str(self.state),
            "expected": self.expected,
            "patched_blob": self.patched_blob,
            "expected_patched_blob": self.expected_patched_blob,
            "ok": self.ok,
            "reason": self.reason,
            "static": self.static.as_json() if self.static else None,
            "drift": self.drift.as_json() if self.drift else None,
            "upstream_release_profile": self.release_profile.as_json() if self.release_profile else None,
            "hunks": [hunk.as_json() for hunk in self.hunks],
            "duration": round(self.duration, 6),
        }


def verify_pin(resolved: ResolvedRef, pin: Pin | None) -> None:
    """A pinned tag whose Dockerfile changed was moved or re-tagged upstream: a hard error."""
    if pin is not None and resolved.dockerfile_blob != pin.dockerfile_blob:
        raise PinMismatch(
            f"{pin.tag}: upstream Dockerfile is blob {resolved.dockerfile_blob}, the pin says "
            f"{pin.dockerfile_blob} (was the tag moved or re-tagged upstream?)"
        )


def choose_variant(
    cache: UpstreamCache, ref: str, resolved: ResolvedRef, *, pins: Pins, forced_patch: Path | None = None
) -> Choice:
    """The series' variant for `ref`; for a branch or commit, by its nearest release tag in the fetched history."""
    if forced_patch is not None:
        forced = Variant(name=forced_patch.name, patch=forced_patch, first=None, until=None, shape=None)
        return Choice(
            variant=forced,
            basis="forced",
            version_tag=ref if tag_version(ref) else None,
            reason=f"{ref}: --patch {forced_patch} given; the series is not consulted",
        )
    described = None
    if tag_version(ref) is None:
        # Like `git describe --tags`, but by version: a commit can carry several tags, and
        # history can merge several release branches; the newest release below it decides.
        described = newest_release(cache.tags_reachable_from(resolved.commit), prerelease_fallback=False)
    return pins.series.choose(ref, described=described)


def latest_release_tag(cache: UpstreamCache) -> str:
    """The newest release tag the remote has, from `git ls-remote` (no clone); pre-releases only if nothing else."""
    listing = cache.ls_remote("refs/tags/*")
    tags = {name.removeprefix("refs/tags/").removesuffix("^{}") for name in listing if name.startswith("refs/tags/")}
    newest = newest_release(tags)
    if newest is None:
        raise UpstreamError(f"--latest: upstream {cache.source.location} has no version tag such as v1.19.0")
    return newest


def refs_to_check(cache: UpstreamCache, pins: Pins, *, refs: Sequence[str], latest: bool) -> list[str]:
    """The refs named, in order and once each, then the newest release with `latest`; every pin when none is named."""
    chosen = list(refs)
    if latest:
        chosen.append(latest_release_tag(cache))
    chosen = chosen or [pin.tag for pin in pins.pins]
    if not chosen:
        raise BadInput(f"nothing to check: {pins.source} pins no release ([[pin]]) and no ref was named")
    return list(dict.fromkeys(chosen))


def export_variant(
    cache: UpstreamCache, ref: str, *, pins: Pins, output: Path, force: bool
) -> tuple[PatchedRef, StaticSummary | None, bool]:
    """Write the harness's variant for `ref` to `output` when it applies there; (the variant evaluated, its static
    checks, whether it was written). A variant that does not apply is not written."""
    refuse_clobber(output, force=force)
    variant_ref = patch_ref(cache, ref, pins=pins)
    static = summarize_static(variant_ref)
    if variant_ref.patched is None:
        return variant_ref, static, False
    atomic_write(output, variant_ref.patch_path.read_bytes(), mode=0o644, replace=force)
    return variant_ref, static, True


@dataclass(frozen=True, kw_only=True)
class PatchedRef:
    """A ref's Dockerfile, verified against its pin, with the chosen patch evaluated (and applied, off the tree)."""

    resolved: ResolvedRef
    pin: Pin | None
    choice: Choice
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
    choice = choose_variant(cache, ref, resolved, pins=pins, forced_patch=forced_patch)
    # A pin's patch is the series' choice for its tag (checked when the pins are loaded).
    patch_path = forced_patch or (pins.patch_path(pin.patch) if pin else choice.variant.patch)
    patch = Patch.load(patch_path)
    original = cache.read_blob(resolved.dockerfile_blob)
    contents: dict[str, bytes | None] = {DOCKERFILE: original}
    report = evaluate(contents, patch, committed=contents)
    patched = patched_contents(patch, contents)[DOCKERFILE] if report.state == State.APPLIES else None
    return PatchedRef(
        resolved=resolved,
        pin=pin,
        choice=choice,
        patch_path=patch_path,
        original=original,
        report=report,
        patched=patched,
    )


StaticMemo = MutableMapping[tuple[str, str, str | None], StaticSummary]
"""Static summaries by (pristine blob, patched blob, shape): many releases share a Dockerfile."""


def summarize_static(patched_ref: PatchedRef, *, memo: StaticMemo | None = None) -> StaticSummary | None:
    if patched_ref.patched is None:
        return None
    shape = patched_ref.choice.variant.shape
    key = (patched_ref.resolved.dockerfile_blob, git_blob_id(patched_ref.patched), shape)
    if memo is not None and key in memo:
        return memo[key]
    try:
        findings = check_patched(
            patched_ref.patched.decode(),
            pristine=patched_ref.original.decode(),
            name=f"{patched_ref.resolved.ref}:{DOCKERFILE}",
            shape=shape,
        )
    except DockerfileError as exc:
        # One odd ref must not hide the others' results: it fails here, with the parser's word.
        findings = [Finding(check="dockerfile-parses", ok=False, line=None, message=str(exc))]
    except UnicodeDecodeError as exc:
        # Nor one that cannot be checked at all: an ERROR for this ref, and the others still run.
        message = f"the Dockerfile is not UTF-8 text (byte {exc.start}: {exc.reason}), so it cannot be checked"
        findings = [Finding(check="dockerfile-text", ok=False, line=None, message=message, error=True)]
    summary = StaticSummary(findings=tuple(findings))
    if memo is not None:
        memo[key] = summary
    return summary


def nearest_pin(pins: Pins, choice: Choice, patch_path: Path) -> Pin | None:
    """The pin of the same patch whose release is the ref's, or else the nearest below (the lowest when none is)."""
    same = sorted(
        [
            (version, pin)
            for pin in pins.pins
            if pin.patched_blob and _same_file(pins.patch_path(pin.patch), patch_path)
            if (version := tag_version(pin.tag)) is not None
        ],
        key=lambda item: item[0],
    )
    if not same:
        return None
    wanted = tag_version(choice.version_tag) if choice.version_tag else None
    if wanted is None:
        return same[-1][1]
    lower = [pin for version, pin in same if version <= wanted]
    return lower[-1] if lower else same[0][1]


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def post_image_drift(
    cache: UpstreamCache, patched_ref: PatchedRef, *, pins: Pins, patched_memo: dict[str, bytes] | None = None
) -> Drift | None:
    """Whether the patched Dockerfile differs from the nearest pin's patched Dockerfile."""
    if patched_ref.patched is None:
        return None
    ours = git_blob_id(patched_ref.patched)
    own = patched_ref.pin
    if own is not None and own.patched_blob and _same_file(pins.patch_path(own.patch), patched_ref.patch_path):
        return Drift(pin=own.tag, differs=ours != own.patched_blob, compared="lock", changed_lines=None, diff=None)
    pin = nearest_pin(pins, patched_ref.choice, patched_ref.patch_path)
    if pin is None:
        return None
    memo = patched_memo if patched_memo is not None else {}
    if pin.tag not in memo:
        try:
            resolved = cache.resolve(pin.tag)
            verify_pin(resolved, pin)
        except (UpstreamError, PinMismatch) as exc:
            # A fork or mirror without the pinned tag (or with another one) says nothing about the ref itself.
            return Drift(
                pin=pin.tag, differs=None, compared="unavailable", changed_lines=None, diff=None, note=str(exc)
            )
        original = cache.read_blob(resolved.dockerfile_blob)
        memo[pin.tag] = patched_contents(Patch.load(pins.patch_path(pin.patch)), {DOCKERFILE: original})[DOCKERFILE]
    theirs = memo[pin.tag]
    if theirs == patched_ref.patched:
        return Drift(pin=pin.tag, differs=False, compared="text", changed_lines=0, diff=None)
    lines = list(
        difflib.unified_diff(
            theirs.decode(errors="replace").splitlines(keepends=True),
            patched_ref.patched.decode(errors="replace").splitlines(keepends=True),
            fromfile=f"{pin.tag}:{DOCKERFILE} (patched)",
            tofile=f"{patched_ref.resolved.ref}:{DOCKERFILE} (patched)",
            n=1,
        )
    )
    changed = sum(1 for line in lines[2:] if line[:1] in "+-")
    shown = lines[:DIFF_LINES_SHOWN]
    if len(lines) > DIFF_LINES_SHOWN:
        shown.append(f"... ({len(lines) - DIFF_LINES_SHOWN} more diff lines)\n")
    return Drift(pin=pin.tag, differs=True, compared="text", changed_lines=changed, diff="".join(shown))


def check_ref(  # noqa: PLR0913  # the memos are passed explicitly rather than kept as global state
    cache: UpstreamCache,
    ref: str,
    *,
    pins: Pins,
    forced_patch: Path | None = None,
    refresh: bool = False,
    static_memo: StaticMemo | None = None,
    patched_memo: dict[str, bytes] | None = None,
) -> CompatResult:
    started = time.perf_counter()
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
    static = summarize_static(patched_ref, memo=static_memo)
    drift = post_image_drift(cache, patched_ref, pins=pins, patched_memo=patched_memo)
    release = release_profile_of(cache, resolved)

    ok, reason = _judge(report.state, expected, patched_blob, expected_patched, report.reason)
    if ok and static is not None and not static.ok:
        failed = ", ".join(dict.fromkeys(f.check for f in static.failed))
        ok, reason = False, f"applies, but the patched Dockerfile fails the static checks: {failed}"
    return CompatResult(
        ref=ref,
        upstream_commit=resolved.upstream_commit,
        dockerfile_blob=resolved.dockerfile_blob,
        patch=shown_path(patch_path, pins.source.parent),
        choice=patched_ref.choice,
        state=report.state,
        expected=expected,
        patched_blob=patched_blob,
        expected_patched_blob=expected_patched,
        hunks=report.hunks,
        static=static,
        drift=drift,
        release_profile=release,
        ok=ok,
        reason=reason,
        duration=time.perf_counter() - started,
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
    shown = shown_path(patched_ref.patch_path, pins.source.parent)
    if patched_ref.patched is None:
        report = patched_ref.report
        finding = Finding(check="patch-applies", ok=False, line=None, message=f"{report.state}: {report.reason}")
        return StaticResult(ref=ref, patch=shown, findings=(finding,))
    findings = check_patched(
        patched_ref.patched.decode(),
        pristine=patched_ref.original.decode(),
        name=f"{ref}:{DOCKERFILE}",
        shape=patched_ref.choice.variant.shape,
    )
    return StaticResult(ref=ref, patch=shown, findings=tuple(findings))


def static_result_of(result: CompatResult, *, label: str | None = None) -> StaticResult:
    """The static checks a compat result carries, as `check` reports them (a patch that does not apply fails)."""
    if result.static is None:
        finding = Finding(check="patch-applies", ok=False, line=None, message=f"{result.state}: {result.reason}")
        return StaticResult(ref=label or result.ref, patch=result.patch, findings=(finding,))
    return StaticResult(ref=label or result.ref, patch=result.patch, findings=result.static.findings)


def check_refs(
    cache: UpstreamCache, refs: Iterable[str], *, pins: Pins, forced_patch: Path | None = None
) -> list[CompatResult]:
    static_memo: StaticMemo = {}
    patched_memo: dict[str, bytes] = {}
    return [
        check_ref(cache, ref, pins=pins, forced_patch=forced_patch, static_memo=static_memo, patched_memo=patched_memo)
        for ref in dict.fromkeys(refs)
    ]
