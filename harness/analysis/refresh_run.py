"""Refresh a patch onto a ref and judge the result: the rebase, the static checks of what it makes, what is written.

The rebase itself is harness.patch.refresh_rebase; this adds what a user needs to act on it:
the static checks of the refreshed Dockerfile, the refreshed patch (or the conflicts
file) written, never over an existing file without `force` and never over an input,
and one verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.analysis.findings import Finding
from harness.analysis.patched import verify_pin
from harness.analysis.static import StaticChecks, check_patched, not_text
from harness.config.pins import Pins
from harness.errors import BadInput
from harness.files import atomic_write, refuse_clobber
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
        if refresh.status == "patch-side":
            checks = f"static checks fail on it: {', '.join(failed)}" if failed else "static checks pass"
            return Status.FAILED, f"{refresh.summary()}; wrote {self.output} ({checks})"
        if failed:
            return Status.FAILED, f"wrote {self.output}, but static checks fail on it: {', '.join(failed)}: review it"
        return Status.OK, f"{refresh.summary()}; wrote {self.output}"


def check_outputs(*, patch: Path, output: Path, conflicts: Path | None, resolved: Path | None, force: bool) -> None:
    """Before any work: the files to write must be writable and not inputs, and not exist unless `force`."""
    inputs = [patch, *([resolved] if resolved else [])]
    refuse_clobber(output, force=force, protected=inputs)
    if conflicts is not None:
        refuse_clobber(conflicts, force=force, protected=[*inputs, output])


@dataclass(frozen=True, kw_only=True)
class RefreshTarget:
    """Where a refresh goes: onto which ref (as the cache resolves it), where to write, and how to settle what does
    not merge."""

    ref: str
    output: Path
    terms: RefreshTerms
    force: bool = False
    conflicts: Path | None = None


def refresh_patch(
    cache: UpstreamCache,
    patch: Patch,
    request: RefreshTarget,
    *,
    pins: Pins,
    checks: StaticChecks,
) -> RefreshRun:
    resolved = cache.resolve(request.ref)
    verify_pin(resolved, pins.get(request.ref))
    refresh = refresh_onto(cache, patch, resolved, pins=pins, terms=request.terms)
    findings = None
    written = conflicts_written = None
    if refresh.candidate is not None:
        [refreshed] = refresh.files
        assert refreshed.result is not None
        try:
            patched, pristine = refreshed.result.decode(), refreshed.target.decode()
        except UnicodeDecodeError as exc:
            # The merge works on bytes; the checks of what it made cannot, and an unchecked patch is not written.
            raise BadInput(f"{request.ref}: {not_text(exc)}; nothing written") from None
        findings = tuple(
            check_patched(
                patched,
                pristine=pristine,
                checks=checks,
                name=f"{request.ref}:{DOCKERFILE} (refreshed)",
            )
        )
        atomic_write(request.output, refresh.candidate, mode=0o644, replace=request.force)
        written = request.output
    elif refresh.status == "conflict" and request.conflicts is not None:
        merged = b"".join(f.merged for f in refresh.files)
        atomic_write(request.conflicts, merged, mode=0o644, replace=request.force)
        conflicts_written = request.conflicts
    return RefreshRun(refresh=refresh, findings=findings, output=written, conflicts_file=conflicts_written)
