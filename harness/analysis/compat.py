"""Does the patch fit a given upstream ref? The patched ref, its static checks, its drift and upstream's release
profile, judged against the pins and combined into results as data."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness.analysis.dockerfile import DockerfileError, DockerfileLimit
from harness.analysis.drift import Drift, post_image_drift, prefetch_compared_pins
from harness.analysis.findings import Finding
from harness.analysis.patched import Analysis, PatchedRef, StaticKey, StaticSummary, patch_ref
from harness.analysis.release_profile import ReleaseProfile
from harness.analysis.static import check_patched, not_text
from harness.config.pins import Pins, shown_path
from harness.config.series import Choice
from harness.errors import BadInput, UpstreamError
from harness.patch.apply import State
from harness.patch.hunks import HunkReport
from harness.patch.patchfile import git_blob_id
from harness.upstream.cache import DOCKERFILE, UpstreamCache
from harness.upstream.releases import LATEST, latest_tag


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


def latest_release_tag(cache: UpstreamCache, *, pre: bool = False) -> str:
    """The newest release tag the remote has, from `git ls-remote` (no clone); pre-releases too with `pre`."""
    return latest_tag(cache, pre=pre)


def refs_to_check(
    cache: UpstreamCache, pins: Pins, *, refs: Sequence[str], latest: bool, pre: bool = False
) -> list[str]:
    """The refs named (`latest` standing for the newest release), in order and once each, then the newest release
    with `latest`; every pin when none is named."""
    chosen = [latest_release_tag(cache, pre=pre) if ref == LATEST else ref for ref in refs]
    if latest:
        chosen.append(latest_release_tag(cache, pre=pre))
    chosen = chosen or [pin.tag for pin in pins.pins]
    if not chosen:
        raise BadInput(f"nothing to check: {pins.source} pins no release ([[pin]]) and no ref was named")
    return list(dict.fromkeys(chosen))


@dataclass(frozen=True, kw_only=True)
class RefError:
    """A ref of a multi-ref run that could not be checked (an unknown ref, say): an `error` for it alone."""

    ref: str
    reason: str


def resolvable_refs(cache: UpstreamCache, refs: Sequence[str]) -> tuple[list[str], list[RefError]]:
    """The refs that resolve, in order, and an error for each that does not: one bad ref of several must not
    abort the others. A run whose every ref fails is bad input, the first error its message, as before."""
    refs = list(dict.fromkeys(refs))
    try:
        cache.resolve_all(refs)
    except UpstreamError:
        if len(refs) == 1:
            raise
    else:
        return refs, []
    # One at a time, only now: the batch cannot say which ref it stumbled on, nor go on past it.
    good: list[str] = []
    errors: list[RefError] = []
    first: UpstreamError | None = None
    for ref in refs:
        try:
            cache.resolve(ref)
        except UpstreamError as exc:
            first = first or exc
            errors.append(RefError(ref=ref, reason=str(exc)))
        else:
            good.append(ref)
    if not good and first is not None:
        raise first
    return good, errors


def variant_for(
    cache: UpstreamCache, ref: str, *, pins: Pins, analysis: Analysis
) -> tuple[PatchedRef, StaticSummary | None]:
    """The harness's variant for `ref`, evaluated there, and its static checks (None when it does not apply)."""
    variant_ref = patch_ref(cache, ref, pins=pins, memo=analysis.memo)
    return variant_ref, summarize_static(variant_ref, analysis=analysis)


def _static_key(patched_ref: PatchedRef, patched: bytes) -> StaticKey:
    return (patched_ref.resolved.dockerfile_blob, git_blob_id(patched), patched_ref.choice.variant.shape)


def summarize_static(patched_ref: PatchedRef, *, analysis: Analysis) -> StaticSummary | None:
    if patched_ref.patched is None:
        return None
    memo = analysis.memo
    key = _static_key(patched_ref, patched_ref.patched)
    if key in memo.static:
        return memo.static[key]
    try:
        findings = check_patched(
            patched_ref.patched.decode(),
            pristine=patched_ref.original.decode(),
            name=f"{patched_ref.resolved.ref}:{DOCKERFILE}",
            shape=patched_ref.choice.variant.shape,
            checks=analysis.checks,
        )
    except DockerfileLimit as exc:
        # Past what the harness reads (BuildKit may build it): not a failure of the patch, a ref it cannot check.
        findings = [Finding(check="dockerfile-limits", ok=False, line=None, message=str(exc), error=True)]
    except DockerfileError as exc:
        # One odd ref must not hide the others' results: it fails here, with the parser's word.
        findings = [Finding(check="dockerfile-parses", ok=False, line=None, message=str(exc))]
    except UnicodeDecodeError as exc:
        # Nor one that cannot be checked at all: an ERROR for this ref, and the others still run.
        findings = [Finding(check="dockerfile-text", ok=False, line=None, message=not_text(exc), error=True)]
    summary = StaticSummary(findings=tuple(findings))
    memo.static[key] = summary
    return summary


def summarize_distinct(patched_refs: Iterable[PatchedRef], *, analysis: Analysis) -> None:
    """The static checks of each distinct patched Dockerfile among these refs, side by side, into the run's memo.

    The checks wait on subprocesses (sh, shellcheck, hadolint), so distinct files are checked
    in parallel, as many at once as the machine has CPUs.
    """
    todo: dict[StaticKey, PatchedRef] = {}
    for patched_ref in patched_refs:
        if patched_ref.patched is not None:
            key = _static_key(patched_ref, patched_ref.patched)
            if key not in analysis.memo.static:
                todo.setdefault(key, patched_ref)
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1)) as pool:
        # list(): the first error (a missing linter) surfaces here.
        list(pool.map(lambda p: summarize_static(p, analysis=analysis), todo.values()))


@dataclass(frozen=True, kw_only=True)
class ForcedPatch:
    """A patch given for the ref instead of the pins' variant, and how the result names the two when not as the
    pins do (a superproject shows its tag for a commit id and its patch relative to itself)."""

    path: Path
    ref_shown: str | None = None
    patch_shown: str | None = None


def check_ref(
    cache: UpstreamCache, ref: str, *, pins: Pins, analysis: Analysis, forced: ForcedPatch | None = None
) -> CompatResult:
    forced_patch = forced.path if forced else None
    started = time.perf_counter()
    memo = analysis.memo
    patched_ref = patch_ref(cache, ref, pins=pins, forced_patch=forced_patch, memo=memo)
    resolved, pin, patch_path, report = (
        patched_ref.resolved,
        patched_ref.pin,
        patched_ref.patch_path,
        patched_ref.report,
    )
    patched_blob = git_blob_id(patched_ref.patched) if patched_ref.patched is not None else None
    expected = pin.expected if pin and forced_patch is None else None
    expected_patched = pin.patched_blob if pin and forced_patch is None else None
    static = summarize_static(patched_ref, analysis=analysis)
    drift = post_image_drift(cache, patched_ref, pins=pins, memo=memo)
    release = memo.release_profile(cache, resolved)

    ok, reason = _judge(report.state, expected, patched_blob, expected_patched, report.reason)
    if ok and static is not None and not static.ok:
        failed = ", ".join(dict.fromkeys(f.check for f in static.failed))
        ok, reason = False, f"applies, but the patched Dockerfile fails the static checks: {failed}"
    return CompatResult(
        ref=forced.ref_shown if forced and forced.ref_shown else ref,
        upstream_commit=resolved.upstream_commit,
        dockerfile_blob=resolved.dockerfile_blob,
        patch=forced.patch_shown if forced and forced.patch_shown else shown_path(patch_path, pins.source.parent),
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


def static_result_of(result: CompatResult, *, label: str | None = None) -> StaticResult:
    """The static checks a compat result carries, as `check` reports them (a patch that does not apply fails)."""
    if result.static is None:
        finding = Finding(check="patch-applies", ok=False, line=None, message=f"{result.state}: {result.reason}")
        return StaticResult(ref=label or result.ref, patch=result.patch, findings=(finding,))
    return StaticResult(ref=label or result.ref, patch=result.patch, findings=result.static.findings)


def check_refs(
    cache: UpstreamCache,
    refs: Iterable[str],
    *,
    pins: Pins,
    analysis: Analysis,
    forced_patch: Path | None = None,
) -> list[CompatResult]:
    """Each ref once, in order. The work is done per distinct thing, not per ref: the refs are resolved together
    (one `ls-remote`, one fetch), each distinct Dockerfile read once, each (Dockerfile, patch) evaluated once and
    each distinct patched Dockerfile checked once, those in parallel."""
    refs = list(dict.fromkeys(refs))
    memo = analysis.memo
    resolved = cache.resolve_all(refs)
    cache.read_blobs(blob for r in resolved.values() for blob in (r.dockerfile_blob, r.cargo_toml_blob) if blob)
    patched = [patch_ref(cache, ref, pins=pins, forced_patch=forced_patch, memo=memo) for ref in refs]
    prefetch_compared_pins(cache, patched, pins=pins, memo=memo)
    summarize_distinct(patched, analysis=analysis)
    forced = ForcedPatch(path=forced_patch) if forced_patch else None
    return [check_ref(cache, ref, pins=pins, analysis=analysis, forced=forced) for ref in refs]
