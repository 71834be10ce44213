"""Does the patch fit a given upstream ref? Pins, cache and engine combined into results as data."""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from harness.analysis.dockerfile import DockerfileError
from harness.analysis.findings import Finding
from harness.analysis.release_profile import ReleaseProfile, release_profile_of
from harness.analysis.static import check_patched
from harness.analysis.verdicts import VerdictCache
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
    """A pinned tag whose Dockerfile or commit changed was moved or re-tagged upstream: a hard error."""
    if pin is None:
        return
    via = "" if resolved.ref == pin.tag else f" ({resolved.ref} is that tag's commit)"
    if resolved.dockerfile_blob != pin.dockerfile_blob:
        raise PinMismatch(
            f"{pin.tag}: upstream Dockerfile is blob {resolved.dockerfile_blob}, the pin says "
            f"{pin.dockerfile_blob}{via} (was the tag moved or re-tagged upstream?)"
        )
    if resolved.upstream_commit != pin.upstream_commit:
        raise PinMismatch(
            f"{pin.tag}: upstream has it at commit {resolved.upstream_commit}, the pin says "
            f"{pin.upstream_commit}{via} (was the tag moved or re-tagged upstream?)"
        )


def verify_pins(resolved: ResolvedRef, pins: Pins) -> None:
    """The pin of the ref as named and the pin of every tag on its commit: however a ref is spelled
    (`v1.17.0^0`, a commit id, a branch at a release), a pinned tag it lands on holds it to that pin."""
    for tag in dict.fromkeys((resolved.ref, *resolved.tags)):
        verify_pin(resolved, pins.get(tag))


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
        # The tags on the commit itself count too: a commit fetched by its id brings no tag along.
        reachable = (*resolved.tags, *cache.tags_reachable_from(resolved.commit))
        described = newest_release(reachable, prerelease_fallback=False)
    return pins.series.choose(ref, described=described)


def latest_release_tag(cache: UpstreamCache) -> str:
    """The newest release tag the remote has, from `git ls-remote` (no clone); pre-releases only if nothing else."""
    if cache.offline:
        raise BadInput("--latest asks the upstream for its newest release, and --offline asks it nothing: drop one")
    newest = newest_release(cache.remote_tags())
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


StaticKey = tuple[str, str, str | None]
"""(pristine blob, patched blob, shape): what the static checks of a ref depend on besides the tools."""


@dataclass(frozen=True)
class RunMemo:
    """What one run works out once, however many of its refs share it.

    Keyed by content (blob ids, the patch's bytes, paths) or by a pin, so that a hit is
    the very answer the work would give: 300 refs over 9 distinct Dockerfiles evaluate
    each patch 9 times, not 300.
    """

    patches: dict[Path, Patch] = field(default_factory=dict)
    evaluations: dict[tuple[str, str], tuple[PatchReport, bytes | None]] = field(default_factory=dict)
    patched_refs: dict[tuple[str, Path | None], PatchedRef] = field(default_factory=dict)
    static: dict[StaticKey, StaticSummary] = field(default_factory=dict)
    pin_patched: dict[str, bytes] = field(default_factory=dict)
    """A pin's patched Dockerfile, by tag: what the post-image of a ref near it is compared with."""
    pins_of_patch: dict[Path, list[tuple[Version, Pin]]] = field(default_factory=dict)
    profiles: dict[str | None, ReleaseProfile] = field(default_factory=dict)
    real_paths: dict[Path, Path] = field(default_factory=dict)

    def patch(self, path: Path) -> Patch:
        if path not in self.patches:
            self.patches[path] = Patch.load(path)
        return self.patches[path]

    def evaluation(self, blob: str, original: bytes, patch: Patch) -> tuple[PatchReport, bytes | None]:
        """The patch's state on this Dockerfile (as committed upstream), and the file patched when it applies."""
        key = (blob, git_blob_id(patch.data))
        if key not in self.evaluations:
            contents: dict[str, bytes | None] = {DOCKERFILE: original}
            report = evaluate(contents, patch, committed=contents)
            patched = patched_contents(patch, contents)[DOCKERFILE] if report.state == State.APPLIES else None
            self.evaluations[key] = (report, patched)
        return self.evaluations[key]

    def real_path(self, path: Path) -> Path:
        if path not in self.real_paths:
            self.real_paths[path] = path.resolve()
        return self.real_paths[path]

    def release_profile(self, cache: UpstreamCache, resolved: ResolvedRef) -> ReleaseProfile:
        if resolved.cargo_toml_blob not in self.profiles:
            self.profiles[resolved.cargo_toml_blob] = release_profile_of(cache, resolved)
        return self.profiles[resolved.cargo_toml_blob]


def patch_ref(
    cache: UpstreamCache,
    ref: str,
    *,
    pins: Pins,
    forced_patch: Path | None = None,
    memo: RunMemo | None = None,
) -> PatchedRef:
    memo = memo if memo is not None else RunMemo()
    if (ref, forced_patch) in memo.patched_refs:
        return memo.patched_refs[ref, forced_patch]
    resolved = cache.resolve(ref)
    pin = pins.get(ref)
    verify_pins(resolved, pins)
    choice = choose_variant(cache, ref, resolved, pins=pins, forced_patch=forced_patch)
    # A pin's patch is the series' choice for its tag (checked when the pins are loaded).
    patch_path = forced_patch or (pins.patch_path(pin.patch) if pin else choice.variant.patch)
    original = cache.read_blob(resolved.dockerfile_blob)
    report, patched = memo.evaluation(resolved.dockerfile_blob, original, memo.patch(patch_path))
    memo.patched_refs[ref, forced_patch] = PatchedRef(
        resolved=resolved,
        pin=pin,
        choice=choice,
        patch_path=patch_path,
        original=original,
        report=report,
        patched=patched,
    )
    return memo.patched_refs[ref, forced_patch]


def _static_key(patched_ref: PatchedRef, patched: bytes) -> StaticKey:
    return (patched_ref.resolved.dockerfile_blob, git_blob_id(patched), patched_ref.choice.variant.shape)


def summarize_static(
    patched_ref: PatchedRef, *, memo: RunMemo | None = None, verdicts: VerdictCache | None = None
) -> StaticSummary | None:
    if patched_ref.patched is None:
        return None
    key = _static_key(patched_ref, patched_ref.patched)
    if memo is not None and key in memo.static:
        return memo.static[key]
    try:
        findings = check_patched(
            patched_ref.patched.decode(),
            pristine=patched_ref.original.decode(),
            name=f"{patched_ref.resolved.ref}:{DOCKERFILE}",
            shape=patched_ref.choice.variant.shape,
            verdicts=verdicts,
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
        memo.static[key] = summary
    return summary


def summarize_distinct(
    patched_refs: Iterable[PatchedRef], *, memo: RunMemo, verdicts: VerdictCache | None = None
) -> None:
    """The static checks of each distinct patched Dockerfile among these refs, side by side, into `memo`.

    The checks wait on subprocesses (sh, shellcheck, hadolint), so distinct files are checked
    in parallel, as many at once as the machine has CPUs.
    """
    todo: dict[StaticKey, PatchedRef] = {}
    for patched_ref in patched_refs:
        if patched_ref.patched is not None:
            key = _static_key(patched_ref, patched_ref.patched)
            if key not in memo.static:
                todo.setdefault(key, patched_ref)
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 1)) as pool:
        # list(): the first error (a missing linter) surfaces here.
        list(pool.map(lambda p: summarize_static(p, memo=memo, verdicts=verdicts), todo.values()))


def nearest_pin(pins: Pins, choice: Choice, patch_path: Path, *, memo: RunMemo | None = None) -> Pin | None:
    """The pin of the same patch whose release is the ref's, or else the nearest below (the lowest when none is)."""
    memo = memo if memo is not None else RunMemo()
    target = memo.real_path(patch_path)
    if target not in memo.pins_of_patch:
        memo.pins_of_patch[target] = sorted(
            [
                (version, pin)
                for pin in pins.pins
                if pin.patched_blob and memo.real_path(pins.patch_path(pin.patch)) == target
                if (version := tag_version(pin.tag)) is not None
            ],
            key=lambda item: item[0],
        )
    same = memo.pins_of_patch[target]
    if not same:
        return None
    wanted = tag_version(choice.version_tag) if choice.version_tag else None
    if wanted is None:
        return same[-1][1]
    lower = [pin for version, pin in same if version <= wanted]
    return lower[-1] if lower else same[0][1]


def _compared_pin(patched_ref: PatchedRef, *, pins: Pins, memo: RunMemo) -> Pin | None:
    """The pin a ref's post-image is compared with by text: None for a ref compared with its own lock."""
    own = patched_ref.pin
    if own is not None and own.patched_blob and _same_patch(pins, own, patched_ref.patch_path, memo):
        return None
    return nearest_pin(pins, patched_ref.choice, patched_ref.patch_path, memo=memo)


def _same_patch(pins: Pins, pin: Pin, patch_path: Path, memo: RunMemo) -> bool:
    return memo.real_path(pins.patch_path(pin.patch)) == memo.real_path(patch_path)


def post_image_drift(
    cache: UpstreamCache, patched_ref: PatchedRef, *, pins: Pins, memo: RunMemo | None = None
) -> Drift | None:
    """Whether the patched Dockerfile differs from the nearest pin's patched Dockerfile."""
    if patched_ref.patched is None:
        return None
    memo = memo if memo is not None else RunMemo()
    ours = git_blob_id(patched_ref.patched)
    own = patched_ref.pin
    if own is not None and own.patched_blob and _same_patch(pins, own, patched_ref.patch_path, memo):
        return Drift(pin=own.tag, differs=ours != own.patched_blob, compared="lock", changed_lines=None, diff=None)
    pin = nearest_pin(pins, patched_ref.choice, patched_ref.patch_path, memo=memo)
    if pin is None:
        return None
    if pin.tag not in memo.pin_patched:
        try:
            resolved = cache.resolve(pin.tag)
            verify_pin(resolved, pin)
        except (UpstreamError, PinMismatch) as exc:
            # A fork or mirror without the pinned tag (or with another one) says nothing about the ref itself.
            return Drift(
                pin=pin.tag, differs=None, compared="unavailable", changed_lines=None, diff=None, note=str(exc)
            )
        original = cache.read_blob(resolved.dockerfile_blob)
        _, patched = memo.evaluation(resolved.dockerfile_blob, original, memo.patch(pins.patch_path(pin.patch)))
        if patched is None:
            patched = patched_contents(memo.patch(pins.patch_path(pin.patch)), {DOCKERFILE: original})[DOCKERFILE]
        memo.pin_patched[pin.tag] = patched
    theirs = memo.pin_patched[pin.tag]
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


def check_ref(  # noqa: PLR0913  # the run's memo and verdict store are passed explicitly, never kept globally
    cache: UpstreamCache,
    ref: str,
    *,
    pins: Pins,
    forced_patch: Path | None = None,
    memo: RunMemo | None = None,
    verdicts: VerdictCache | None = None,
) -> CompatResult:
    started = time.perf_counter()
    memo = memo if memo is not None else RunMemo()
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
    static = summarize_static(patched_ref, memo=memo, verdicts=verdicts)
    drift = post_image_drift(cache, patched_ref, pins=pins, memo=memo)
    release = memo.release_profile(cache, resolved)

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
    forced_patch: Path | None = None,
    verdicts: VerdictCache | None = None,
) -> list[CompatResult]:
    """Each ref once, in order. The work is done per distinct thing, not per ref: the refs are resolved together
    (one `ls-remote`, one fetch), each distinct Dockerfile read once, each (Dockerfile, patch) evaluated once and
    each distinct patched Dockerfile checked once, those in parallel."""
    refs = list(dict.fromkeys(refs))
    memo = RunMemo()
    resolved = cache.resolve_all(refs)
    cache.read_blobs(blob for r in resolved.values() for blob in (r.dockerfile_blob, r.cargo_toml_blob) if blob)
    patched = [patch_ref(cache, ref, pins=pins, forced_patch=forced_patch, memo=memo) for ref in refs]
    _prefetch_compared_pins(cache, patched, pins=pins, memo=memo)
    summarize_distinct(patched, memo=memo, verdicts=verdicts)
    return [check_ref(cache, ref, pins=pins, forced_patch=forced_patch, memo=memo, verdicts=verdicts) for ref in refs]


def _prefetch_compared_pins(cache: UpstreamCache, patched: Iterable[PatchedRef], *, pins: Pins, memo: RunMemo) -> None:
    """Resolve and read the pins that refs without their own lock are compared with, all in one go."""
    tags = {
        pin.tag
        for patched_ref in patched
        if patched_ref.patched is not None
        if (pin := _compared_pin(patched_ref, pins=pins, memo=memo)) is not None
    }
    try:
        resolved = cache.resolve_all(sorted(tags))
        cache.read_blobs(r.dockerfile_blob for r in resolved.values())
    except UpstreamError:
        pass  # each is tried again on its own, and the one that fails is noted on the refs compared with it
