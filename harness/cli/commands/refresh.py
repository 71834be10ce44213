from __future__ import annotations

from pathlib import Path

from harness.analysis.refresh_run import RefreshTarget, refresh_patch
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
from harness.results import Outcome
from harness.upstream.cache import DOCKERFILE
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
    return refresh_outcome(
        refreshed,
        patch_shown=shown_path(patch.path, request.shown_from),
        frame=latest_frame(upstream.latest, source=upstream.latest_from),
    )
