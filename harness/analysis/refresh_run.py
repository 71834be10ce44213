"""Refresh a patch onto a ref and judge the result: the rebase, the static checks of what it makes, what is written.

The rebase itself is harness.patch.refresh_rebase; this adds what a user needs to act on it:
the static checks of the refreshed Dockerfile, the refreshed patch (or the conflicts
file) written (where the command line checked, before any work, that it may go),
and one verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.analysis.findings import Finding
from harness.analysis.patched import resolve_pinned
from harness.analysis.static import StaticChecks, check_patched, not_text
from harness.config.pins import Pins
from harness.errors import BadInput
from harness.files import output_name, write_output
from harness.patch.patchfile import Patch
from harness.patch.refresh_rebase import Refresh, RefreshTerms, refresh_onto
from harness.results import Status
from harness.upstream.cache import DOCKERFILE, UpstreamCache


@dataclass(frozen=True, kw_only=True)
class RefreshRun:
    refresh: Refresh
    findings: tuple[Finding, ...] | None
    """The static checks of the refreshed Dockerfile; None when there is no candidate."""
    output: Path | None
    """Where the refreshed patch was written, if it was."""
    conflicts_file: Path | None
    """Where the merge with conflict markers was written, if it was."""

    @property
    def failed_checks(self) -> list[str]:
        return list(dict.fromkeys(f.check for f in self.findings or () if not f.ok))

    def verdict(self) -> tuple[Status, str]:
        """Passed only when a refreshed patch was written and its Dockerfile passes every static check."""
        refresh = self.refresh
        if refresh.candidate is None:
            wrote = (
                f"; wrote {self.conflicts_file}: resolve it, then refresh again with --resolved"
                if (self.conflicts_file)
                else "; nothing written"
            )
            return Status.FAILED, refresh.summary() + wrote
        failed = self.failed_checks
        written = output_name(self.output) if self.output is not None else None
        if refresh.status == "patch-side":
            checks = f"static checks fail on it: {', '.join(failed)}" if failed else "static checks pass"
            return Status.FAILED, f"{refresh.summary()}; wrote {written} ({checks})"
        if failed:
            return Status.FAILED, f"wrote {written}, but static checks fail on it: {', '.join(failed)}: review it"
        return Status.OK, f"{refresh.summary()}; wrote {written}"


@dataclass(frozen=True, kw_only=True)
class RefreshTarget:
    """Where a refresh goes: onto which ref (as the cache resolves it), where to write, and how to settle what does
    not merge."""

    ref: str
    output: Path
    terms: RefreshTerms
    force: bool = False
    conflicts: Path | None = None


def _write(path: Path, data: bytes, *, replace: bool) -> None:
    try:
        write_output(path, data, mode=0o644, replace=replace)
    except OSError as exc:
        raise BadInput(f"{path} cannot be written: {exc.strerror or exc}; nothing written") from None


def refreshed_candidate(  # noqa: PLR0913  # refresh_patch's inputs less where it writes, for bump to choose from
    cache: UpstreamCache,
    patch: Patch,
    ref: str,
    *,
    pins: Pins,
    checks: StaticChecks,
    terms: RefreshTerms,
) -> tuple[Refresh, tuple[Finding, ...] | None]:
    """The patch rebased onto `ref` and the static checks of what it makes there (None without a candidate);
    nothing is written."""
    resolved = resolve_pinned(cache, ref, pins)
    refresh = refresh_onto(cache, patch, resolved, pins=pins, terms=terms)
    if refresh.candidate is None:
        return refresh, None
    [refreshed] = refresh.files
    assert refreshed.result is not None
    try:
        patched, pristine = refreshed.result.decode(), refreshed.target.decode()
    except UnicodeDecodeError as exc:
        # The merge works on bytes; the checks of what it made cannot, and an unchecked patch is not written.
        raise BadInput(f"{ref}: {not_text(exc)}; nothing written") from None
    findings = tuple(check_patched(patched, pristine=pristine, checks=checks, name=f"{ref}:{DOCKERFILE} (refreshed)"))
    return refresh, findings


def refresh_patch(
    cache: UpstreamCache,
    patch: Patch,
    request: RefreshTarget,
    *,
    pins: Pins,
    checks: StaticChecks,
) -> RefreshRun:
    refresh, findings = refreshed_candidate(cache, patch, request.ref, pins=pins, checks=checks, terms=request.terms)
    written = conflicts_written = None
    if refresh.candidate is not None:
        _write(request.output, refresh.candidate, replace=request.force)
        written = request.output
    elif refresh.status == "conflict" and request.conflicts is not None:
        merged = b"".join(f.merged for f in refresh.files)
        _write(request.conflicts, merged, replace=request.force)
        conflicts_written = request.conflicts
    return RefreshRun(refresh=refresh, findings=findings, output=written, conflicts_file=conflicts_written)
