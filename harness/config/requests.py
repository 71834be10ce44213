"""What the user asked of each command, apart from the run (harness.config.run): one frozen record per command,
made at the command line's edge and passed whole to the command and the layers below it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

from harness.config.pins import Pins
from harness.config.superproject import SuperprojectConfig

TreeCommand = Literal["status", "apply", "revert"]


@dataclass(frozen=True, kw_only=True)
class TreeRequest:
    """`status`, `apply`, `revert`: one checkout, named or the superproject's submodule. The pins alone are
    resolved (to pick the variant for the checkout's version), never a cache directory: nothing is fetched."""

    command: TreeCommand
    checkout: Path | None
    patch: Path | None
    superproject: SuperprojectConfig | None
    pins: Pins


@dataclass(frozen=True, kw_only=True)
class CompatRequest:
    refs: tuple[str, ...] = ()
    """The refs named; none: every pin (outside a superproject) or the recorded commit (in one)."""
    latest: bool = False
    forced_patch: Path | None = None
    """This patch for every ref, instead of the series' variant for each."""
    bump_to: str | None = None
    """In a superproject: the ref of a proposed bump."""


@dataclass(frozen=True, kw_only=True)
class CheckRequest:
    refs: tuple[str, ...] = ()
    forced_patch: Path | None = None
    dockerfile: Path | None = None
    """An already patched Dockerfile, checked instead of refs."""
    pristine: Path | None = None
    """With `dockerfile`: upstream's original, to lint the change against."""


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """`patch --for REF --output FILE`: the harness's variant for a ref, written out."""

    ref: str
    output: Path
    force: bool = False


@dataclass(frozen=True, kw_only=True)
class RefreshRequest:
    """`refresh`: the patch onto a ref, where the result goes, and how to settle what does not merge."""

    ref: str
    patch: Path
    output: Path
    today: date
    force: bool = False
    conflicts: Path | None = None
    resolved: Path | None = None
    """REF's Dockerfile as the user resolved a conflict."""
    take_patch_side: bool = False
    shown_from: Path
    """The directory the patch is shown relative to (the superproject, else the current directory)."""
