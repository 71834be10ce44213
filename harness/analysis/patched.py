"""A ref's Dockerfile patched off the tree, checked against its pins, and what a run works out once for its refs.

compat, check, verify, refresh and build all start here: resolve the ref, hold it to the
pin of every tag on its commit, choose the patch variant, and evaluate (and apply, in
memory) the patch on the Dockerfile upstream has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import Version

from harness.analysis import dockerfile as dfm
from harness.analysis.findings import Finding
from harness.analysis.release_profile import ReleaseProfile, release_profile_of
from harness.analysis.semantic import detect_shape
from harness.analysis.static import StaticChecks
from harness.config.pins import Pin, Pins
from harness.config.series import Choice, Variant, newest_release, tag_version
from harness.errors import CheckFailed, PinMismatch
from harness.knobs import Shape
from harness.patch.apply import PatchReport, State, evaluate, patched_contents
from harness.patch.patchfile import Patch, git_blob_id
from harness.upstream.cache import DOCKERFILE, ResolvedRef, UpstreamCache


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


def resolve_pinned(cache: UpstreamCache, ref: str, pins: Pins) -> ResolvedRef:
    """`ref` resolved, and held to the pin of every tag on the commit it lands on: the one way every command
    (compat, check, patch, refresh, verify, build) starts from a ref, so that none takes a moved tag that another
    refuses, however it is spelled."""
    resolved = cache.resolve(ref)
    verify_pins(resolved, pins)
    return resolved


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


@dataclass(frozen=True, kw_only=True)
class Analysis:
    """What one run's checks of its refs share: how the static checks run, and what the run has worked out once.

    Made once per run, where the run starts (the command), and passed whole.
    """

    checks: StaticChecks
    memo: RunMemo = field(default_factory=RunMemo)


def patch_ref(
    cache: UpstreamCache,
    ref: str,
    *,
    pins: Pins,
    memo: RunMemo,
    forced_patch: Path | None = None,
) -> PatchedRef:
    if (ref, forced_patch) in memo.patched_refs:
        return memo.patched_refs[ref, forced_patch]
    resolved = resolve_pinned(cache, ref, pins)
    pin = pins.get(ref)
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


@dataclass(frozen=True, kw_only=True)
class PatchedDockerfile:
    """A patched Dockerfile as a build takes it: its bytes, parsed once, and the builder shape it has.

    The build copy the harness makes of it (air-gapped, traced, its cache mounts isolated) keeps these
    stages and COPY lines, so what a build reads of its Dockerfile is read from here, never parsed again.
    """

    data: bytes
    parsed: dfm.Dockerfile
    shape: Shape

    @classmethod
    def read(cls, data: bytes, *, shape: Shape | None = None) -> PatchedDockerfile:
        """`data` parsed; `shape` as the series' variant says, else read from the file's COPY lines."""
        parsed = dfm.parse(data.decode())
        return cls(data=data, parsed=parsed, shape=shape or detect_shape(parsed))


def applying_patch(
    cache: UpstreamCache, ref: str, *, pins: Pins, memo: RunMemo, forced_patch: Path | None = None
) -> tuple[PatchedRef, PatchedDockerfile]:
    """`ref` patched off the tree, and its patched Dockerfile; refused when the patch does not apply.

    What a build, or its plan, starts from.
    """
    patched_ref = patch_ref(cache, ref, pins=pins, memo=memo, forced_patch=forced_patch)
    if patched_ref.patched is None:
        report = patched_ref.report
        raise CheckFailed(f"{patched_ref.patch_path.name} does not apply to {ref}: {report.state}: {report.reason}")
    return patched_ref, PatchedDockerfile.read(patched_ref.patched, shape=patched_ref.choice.variant.shape)
