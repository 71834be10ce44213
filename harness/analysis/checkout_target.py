"""Which checkout `status`, `apply` and `revert` work on, and with which patch.

In a superproject, the submodule's work tree and the configured patch, or series of
patches (in the order they apply); otherwise the
checkout named (or the current directory) and the patch given, else the one the pins
name for the checkout's Dockerfile (as it is, or as its commit has it), else the
newest variant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from harness.config.pins import Pins
from harness.config.superproject import SuperprojectConfig
from harness.errors import BadInput
from harness.files import MAX_INPUT_BYTES, read_in_tree
from harness.patch.apply import committed_files, read_series_files
from harness.patch.patchfile import Patch, git_blob_id
from harness.upstream.cache import DOCKERFILE
from harness.upstream.submodule import work_tree_for

log = logging.getLogger("harness")


@dataclass(frozen=True, kw_only=True)
class TreeTarget:
    tree: Path
    patches: tuple[Patch, ...]
    """One patch, or a series in the order it applies."""


def default_patch_for(tree: Path, pins: Pins) -> Path:
    """The patch the pins name for this checkout's Dockerfile (working copy or commit), else the newest variant."""
    blobs = []
    # Read as harness.patch.apply reads it: never through a symbolic link, never a special or oversized file.
    current = read_in_tree(tree, DOCKERFILE, limit=MAX_INPUT_BYTES)
    if current is not None:
        blobs.append(git_blob_id(current))
    committed = (committed_files(tree, [DOCKERFILE]) or {}).get(DOCKERFILE)
    if committed is not None:
        blobs.append(git_blob_id(committed))
    for blob in blobs:
        matches = pins.by_dockerfile_blob(blob)
        if matches:
            return pins.patch_path(matches[0].patch)
    return pins.patch_path(pins.default_patch)


def tree_target(
    *,
    checkout: Path | None,
    patch: Path | None,
    superproject: SuperprojectConfig | None,
    pins: Pins,
    for_apply: bool,
) -> TreeTarget:
    """The work tree and the patches; `for_apply` refuses a submodule checked out away from its recorded commit."""
    if superproject is not None:
        tree, submodule = work_tree_for(superproject, require_recorded=for_apply)
        if not submodule.at_recorded_commit:
            log.warning("%s is checked out at %s, not at the recorded commit", submodule.path, submodule.checked_out)
        loaded = tuple(Patch.load(path) for path in superproject.patches)
    else:
        tree = checkout or Path()
        if not tree.is_dir():
            raise BadInput(f"checkout {tree} is not a directory")
        loaded = (Patch.load(patch or default_patch_for(tree, pins)),)
    missing = [name for name, data in read_series_files(tree, loaded).items() if data is None]
    if missing:
        raise BadInput(f"checkout {tree} has no {', '.join(missing)}: is it an upstream MAS checkout?")
    return TreeTarget(tree=tree, patches=loaded)
