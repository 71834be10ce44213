"""The users' superproject at v1.17.0, made once per module from the bundled upstream: each test copies it."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.patch.patchfile import Patch
from tests.support.superproject import clone_upstream, make_superproject


@pytest.fixture(scope="module")
def upstream_clone(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the bundle: the repository the users' submodule points at."""
    return clone_upstream(bundle, tmp_path_factory.mktemp("upstream") / "matrix-authentication-service")


@pytest.fixture(scope="module")
def at_v1_17(upstream_clone: Path, tmp_path_factory: pytest.TempPathFactory, main_patch: Patch) -> Path:
    """The superproject at v1.17.0 with the v0.15-v1.17 patch; each test works on a copy."""
    root = tmp_path_factory.mktemp("template") / "chat"
    return make_superproject(root, upstream=upstream_clone, tag="v1.17.0", patch=main_patch.data)
