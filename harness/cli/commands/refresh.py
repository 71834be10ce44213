from __future__ import annotations

from datetime import date
from pathlib import Path

from harness.analysis.confine import Confinement
from harness.analysis.refresh_run import RefreshRequest, refresh_patch
from harness.analysis.static import StaticChecks
from harness.analysis.verdicts import VerdictCache
from harness.config.pins import Pins, shown_path
from harness.errors import BadInput
from harness.patch.patchfile import Patch
from harness.patch.refresh_rebase import Settlement
from harness.report.refresh_outcome import refresh_outcome
from harness.results import Outcome
from harness.upstream.cache import DOCKERFILE, UpstreamCache


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{what} {path} cannot be read: {exc.strerror}") from None


def refresh(  # noqa: PLR0913  # one keyword per option of the command, by design
    *,
    cache: UpstreamCache,
    ref: str,
    patch: Path,
    pins: Pins,
    output: Path,
    force: bool,
    conflicts: Path | None,
    resolved: Path | None,
    take_patch_side: bool,
    today: date,
    shown_from: Path,
    confinement: Confinement,
    reuse_verdicts: bool = True,
) -> Outcome:
    resolution = {DOCKERFILE: _read_bytes(resolved, "resolved Dockerfile")} if resolved else None
    request = RefreshRequest(
        ref=ref,
        output=output,
        today=today,
        force=force,
        conflicts=conflicts,
        settlement=Settlement(resolution=resolution, take_patch_side=take_patch_side),
    )
    # The refreshed Dockerfile's static checks are stored with compat's: a rerun, or compat after it, reads them back.
    verdicts = VerdictCache.in_cache_dir(cache.root, reuse=reuse_verdicts)
    checks = StaticChecks(confinement=confinement, verdicts=verdicts)
    run = refresh_patch(cache, Patch.load(patch), request, pins=pins, checks=checks)
    return refresh_outcome(run, patch_shown=shown_path(patch, shown_from))
