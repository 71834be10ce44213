from __future__ import annotations

from pathlib import Path

from harness.analysis.refresh_run import RefreshRun, RefreshTarget, refresh_patch
from harness.analysis.submodule_checks import others_at
from harness.cli.commands.run_context import open_checks
from harness.config.pins import shown_path
from harness.config.requests import RefreshRequest
from harness.config.run import Run
from harness.errors import BadInput
from harness.files import read_input
from harness.patch.apply import dockerfile_patch_index
from harness.patch.patchfile import Patch
from harness.patch.refresh_rebase import RefreshTerms, Settlement
from harness.report.refresh_outcome import refresh_outcome
from harness.report.run_frame import latest_frame
from harness.results import Frame, Outcome
from harness.upstream.cache import DOCKERFILE, UpstreamCache
from harness.upstream.submodule import open_ref


def _read_bytes(path: Path, what: str) -> bytes:
    data = read_input(path, what)
    if data is None:
        raise BadInput(f"{what} {path} does not exist")
    return data


def refresh(run: Run, request: RefreshRequest) -> Outcome:
    resolution = {DOCKERFILE: _read_bytes(request.resolved, "resolved Dockerfile")} if request.resolved else None
    upstream = open_ref(run, request.ref, pre=request.pre)
    target = RefreshTarget(
        ref=upstream.ref,
        output=request.output,
        terms=RefreshTerms(
            today=request.today,
            settlement=Settlement(resolution=resolution, take_patch_side=request.take_patch_side),
        ),
        force=request.force,
        conflicts=request.conflicts,
    )
    # The refreshed Dockerfile's static checks are stored with compat's: a rerun, or compat after it, reads them back.
    patches = [Patch.load(path) for path in request.patches]
    patch = patches[dockerfile_patch_index(patches, DOCKERFILE)]
    refreshed = refresh_patch(upstream.cache, patch, target, pins=run.pins, checks=open_checks(run))
    frame = latest_frame(upstream.latest, source=upstream.latest_from)
    if len(patches) > 1:
        frame = _others_frame(upstream.cache, upstream.ref, patches, refreshed, request).within(frame)
    return refresh_outcome(refreshed, patch_shown=shown_path(patch.path, request.shown_from), frame=frame)


def _others_frame(
    cache: UpstreamCache, ref: str, patches: list[Patch], refreshed: RefreshRun, request: RefreshRequest
) -> Frame:
    """A series' other patches at the ref, beside the refreshed one: the harness rebases only the Dockerfile patch,
    so each of the others is said to apply as it is, or to need rebasing by hand."""
    candidate = refreshed.refresh.candidate
    fitted = None if candidate is None else Patch.parse(candidate, path=refreshed.refresh.patch)
    rest = others_at(
        cache, cache.resolve(ref), patches, fitted=fitted, shown=lambda path: shown_path(path, request.shown_from)
    )
    return Frame(last=(*rest.fits, *rest.blocked), data={"other_patches": {"fit": rest.fits, "blocked": rest.blocked}})
