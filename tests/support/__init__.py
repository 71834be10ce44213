"""What the tests share besides fixtures: the upstream test data's location, git in a test's own repository, and the
types of the factory fixtures (the fixtures themselves are in the root conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[3] / "shared"
BUNDLE = Path(os.environ.get("MAS_HARNESS_BUNDLE", SHARED / "upstream/mas-dockerfiles.bundle"))
"""The upstream test data beside the checkout (../shared), as it is in CI; MAS_HARNESS_BUNDLE points elsewhere."""

DockerfileTexts = Callable[[str], tuple[str, str]]
"""(pristine, patched) Dockerfile text of a tag."""
CheckoutFactory = Callable[[str], Path]
"""A tag of the bundle checked out into the test's own directory."""
MakeRepo = Callable[..., Path]
"""A git repository made by the test, with the given files committed."""


@dataclass(frozen=True, kw_only=True)
class CompatRun:
    """`mas-harness compat` over every pin of the bundle, run once for the session: its exit code and reports."""

    code: int
    document: dict[str, Any]
    junit: bytes


def git(cwd: Path, *args: str) -> str:
    """git in a repository the test owns; its stdout, stripped."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
