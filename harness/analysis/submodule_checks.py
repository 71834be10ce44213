"""Superproject mode: MAS as a git submodule with the patch beside it, the layout the users have.

What the superproject records is the gitlink of the submodule in its index (what
`git submodule update` checks out and the next commit records). `verify` checks the
patch against that exact commit's Dockerfile, `check_bump` against a ref the
submodule might move to; both read upstream through the harness's checkout cache
with the submodule's own repository (or its remote) as the source, so the
superproject's index and work tree and the submodule's checkout are only read.
When the patch does not fit, the check says which variant this harness has for the
ref, whether that variant applies and passes the static checks, and the command that
writes it into the user's patches directory.

A series of patches is checked as it applies: every patch on the files of the commit,
each on the tree the ones before it leave, one result per patch. Its one Dockerfile
patch is what the static checks, the pins and the variants are about; the harness has
no variant for the user's other patches, so those are reported, never replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.analysis.compat import (
    CompatResult,
    ForcedPatch,
    StaticResult,
    check_ref,
    static_result_of,
    summarize_static,
)
from harness.analysis.patched import Analysis, RunMemo, patch_ref, resolve_pinned, verify_pin
from harness.analysis.release_profile import describe_change, release_profile_of
from harness.config.pins import shown_path
from harness.config.run import Run
from harness.config.superproject import SuperprojectConfig
from harness.patch.apply import SeriesReport, State, dockerfile_patch_index, evaluate_series, label, series_files
from harness.patch.patchfile import Patch
from harness.upstream.cache import DOCKERFILE, ResolvedRef, UpstreamCache
from harness.upstream.submodule import Submodule, SubmoduleUpstream, exact_tag, inspect_submodule, open_upstream


@dataclass(frozen=True, kw_only=True)
class Suggestion:
    """The harness's own variant for a ref the user's patch does not fit, and the commands that take it."""

    ref: str
    variant: str
    reason: str
    applies: bool
    static_ok: bool | None
    """None when the variant does not apply (nothing to check)."""
    export_command: str
    refresh_command: str
    failed_checks: tuple[str, ...] = ()
    """Each static check the variant fails there, as `check (line N): message`."""

    def lines(self) -> list[str]:
        verdict = (
            "applies and passes the static checks"
            if self.applies and self.static_ok
            else "applies but fails a static check"
            if self.applies
            else "does not apply either"
        )
        lines = [f"the harness's {self.variant} variant for {self.ref} ({self.reason}) {verdict}"]
        if self.failed_checks:
            more = f" (and {len(self.failed_checks) - 1} more)" if len(self.failed_checks) > 1 else ""
            lines.append(f"  fails: {self.failed_checks[0]}{more}")
        if self.applies:
            lines.append(f"  take it:    {self.export_command}")
        lines.append(f"  or rebase yours: {self.refresh_command}")
        return lines


@dataclass(frozen=True, kw_only=True)
class SuperprojectCheck:
    """The patch against one upstream commit of the submodule, as data."""

    superproject: Path
    submodule: Submodule
    ref: str
    """What was checked: the recorded commit, or the ref of a proposed bump."""
    tag: str | None
    """The tag the submodule's repository has for the checked commit, when exact."""
    source: str
    compat: CompatResult
    static: StaticResult | None
    profile_change: str | None = None
    """For a bump: one line when upstream's release profile differs between the recorded commit and the ref."""
    suggestion: Suggestion | None = None
    """When the patch does not fit: the harness's variant for the ref."""
    latest: str | None = None
    """The tag `latest` stood for, when the bump was to `latest`."""
    latest_from: str = ""
    """Whose tags `latest` was the newest of, in words."""
    up_to_date: bool = False
    """A bump to `latest` when the superproject already records that release: nothing to bump."""
    series: SeriesReport | None = None
    """A series: every patch of it on the commit's files, in order (`compat` is its Dockerfile patch's)."""

    @property
    def ok(self) -> bool:
        return self.compat.ok and (self.static is None or self.static.ok) and self.series_fits

    @property
    def series_fits(self) -> bool:
        """Every patch of a series applies where the ones before it leave the tree (one patch: nothing more)."""
        return self.series is None or all(report.state == State.APPLIES for report in self.series.reports)


def dockerfile_patch(config: SuperprojectConfig, memo: RunMemo) -> Path:
    """The superproject's patch of upstream's Dockerfile: its one patch, or the one of its series that changes the
    Dockerfile. Every patch is read here, so a bad one is reported before any fetch."""
    patches = [memo.patch(path) for path in config.patches]
    return config.patches[dockerfile_patch_index(patches, DOCKERFILE)]


@dataclass(frozen=True, kw_only=True)
class OthersAt:
    """A series' patches other than its Dockerfile patch, at a ref, with the Dockerfile patch as a bump or a
    refresh leaves it: whether each applies as it is."""

    fits: tuple[str, ...]
    """One line per patch that applies there as it is."""
    blocked: tuple[str, ...]
    """One line per patch that does not, naming its first conflicting hunk: the user's to rebase."""


def others_at(
    cache: UpstreamCache,
    resolved: ResolvedRef,
    patches: Sequence[Patch],
    *,
    fitted: Patch | None,
    shown: Callable[[Path], str],
) -> OthersAt:
    """Every patch of the series but its Dockerfile patch on `resolved`'s files, in order, with `fitted` in that
    one's place (None: none fitted, so it is left out; it changes only what the others do not)."""
    index = dockerfile_patch_index(patches, DOCKERFILE)
    kept = [(i, fitted if i == index else patch) for i, patch in enumerate(patches) if i != index or fitted]
    series = [patch for _, patch in kept if patch is not None]
    files = cache.files_at(resolved, series_files(series))
    report = evaluate_series(files, series, committed=files)
    fits, blocked = [], []
    for (i, _), result in zip(kept, report.reports, strict=True):
        if i == index:
            continue
        if result.state == State.APPLIES:
            fits.append(f"{shown(patches[i].path)}: applies as it is")
            continue
        where = next((h.describe() for h in result.hunks if h.status == "conflict"), None)
        blocked.append(
            f"{label(patches, i)} {result.state} at {resolved.ref}: {where or result.reason}; the harness has no "
            "variant for it and rebases only the Dockerfile patch: rebase it by hand"
        )
    return OthersAt(fits=tuple(fits), blocked=tuple(blocked))


def suggest_variant(
    upstream: SubmoduleUpstream, *, label: str, run: Run, analysis: Analysis, patch: Path
) -> Suggestion:
    """What the harness has for the upstream ref when the user's Dockerfile patch (`patch`) does not fit it."""
    config = run.in_superproject()
    ref = upstream.ref
    variant_ref = patch_ref(upstream.cache, ref, pins=run.pins, memo=analysis.memo)
    choice = variant_ref.choice
    static = summarize_static(variant_ref, analysis=analysis)
    shown = shown_path(patch, config.root)
    return Suggestion(
        ref=label,
        variant=choice.variant.name,
        reason=choice.reason.removeprefix(f"{ref}: ").removeprefix(f"{ref}"),
        applies=variant_ref.report.state == State.APPLIES,
        static_ok=None if static is None else static.ok,
        failed_checks=()
        if static is None
        else tuple(f"{f.check}{f' (line {f.line})' if f.line is not None else ''}: {f.message}" for f in static.failed),
        export_command=f"mas-harness patch --for {label} --output {shown} --force",
        refresh_command=f"mas-harness refresh --ref {label} --output {Path(shown).with_suffix('.refreshed.patch')}",
    )


CheckKind = Literal["recorded", "recorded-static", "bump"]
"""The recorded commit (with the static checks or without), or the ref of a proposed bump."""


def _check(run: Run, ref: str | None, *, kind: CheckKind, analysis: Analysis, pre: bool = False) -> SuperprojectCheck:
    """The patch against `ref` (None: the commit the superproject records) of the run's submodule."""
    config = run.in_superproject()
    sub = inspect_submodule(config)
    ref = sub.recorded_commit if ref is None else ref
    pins = run.pins
    users = dockerfile_patch(config, analysis.memo)  # a bad patch is reported before any fetch
    upstream = open_upstream(run, sub, ref, pre=pre)
    if upstream.latest is not None:
        ref = upstream.latest  # shown and checked as the tag it stands for
    resolved = resolve_pinned(upstream.cache, upstream.ref, pins)
    tag = exact_tag(sub, resolved.commit)
    if tag is not None and tag != ref:
        # A commit the submodule's repository tags: the pin of that tag guards against a moved tag too.
        verify_pin(resolved, pins.get(tag))
    # A commit id the submodule's repository tags is shown by its tag; a name is shown as the user gave it.
    label = tag if tag is not None and ref == resolved.commit else ref
    users_patch = ForcedPatch(path=users, ref_shown=label, patch_shown=shown_path(users, config.root))
    result = check_ref(upstream.cache, upstream.ref, pins=pins, analysis=analysis, forced=users_patch)
    series = None
    if config.is_series:
        patches = [analysis.memo.patch(path) for path in config.patches]
        files = upstream.cache.files_at(resolved, series_files(patches))
        series = evaluate_series(files, patches, committed=files)
    static_result = static_result_of(result, label=label) if kind == "recorded-static" else None
    profile_change = None
    if kind == "bump" and result.release_profile is not None:
        recorded = open_upstream(run, sub, sub.recorded_commit)
        before = release_profile_of(recorded.cache, recorded.cache.resolve(recorded.ref))
        old = exact_tag(sub, sub.recorded_commit) or sub.recorded_commit[:12]
        profile_change = describe_change(before, result.release_profile, old=old, new=label)
    suggestion = None
    if not result.ok and result.state != State.UPSTREAMED:
        suggestion = suggest_variant(upstream, label=label, run=run, analysis=analysis, patch=users)
    return SuperprojectCheck(
        superproject=config.root,
        submodule=sub,
        ref=ref,
        tag=tag,
        source=upstream.cache.source.location,
        compat=result,
        static=static_result,
        profile_change=profile_change,
        suggestion=suggestion,
        latest=upstream.latest,
        latest_from=upstream.latest_from,
        up_to_date=upstream.latest is not None and resolved.commit == sub.recorded_commit,
        series=series,
    )


def verify(run: Run, *, analysis: Analysis, static: bool = True) -> SuperprojectCheck:
    """The patch against the Dockerfile of the commit the superproject records: state, hunks, static checks."""
    kind: CheckKind = "recorded-static" if static else "recorded"
    return _check(run, None, kind=kind, analysis=analysis)


def check_bump(run: Run, ref: str, *, analysis: Analysis, pre: bool = False) -> SuperprojectCheck:
    """Would the patch still fit if the submodule moved to `ref`? Nothing of the superproject is written.
    `ref` may be `latest`, the newest release tag (pre-releases too with `pre`)."""
    return _check(run, ref, kind="bump", analysis=analysis, pre=pre)
