"""What the user asked of each command, apart from the run (harness.config.run): one frozen record per command,
made at the command line's edge and passed whole to the command and the layers below it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal, get_args

from harness.config.pins import Pins
from harness.config.superproject import SuperprojectConfig
from harness.knobs import BUILDER_STAGE, ExportFormat

TreeCommand = Literal["status", "apply", "revert"]


@dataclass(frozen=True, kw_only=True)
class TreeRequest:
    """`status`, `apply`, `revert`: one checkout, named or the superproject's submodule. The pins alone are
    resolved (to pick the variant for the checkout's version), never a cache directory: nothing is fetched."""

    command: TreeCommand
    checkout: Path | None
    patch: Path | None
    """--patch outside a superproject (in one, the flag is already in `superproject`, standing for its series)."""
    superproject: SuperprojectConfig | None
    """Its patches, one or a series, are what the commands apply in a superproject."""
    pins: Pins
    journals: Path | None
    """Where the journal of a checkout that is not a git work tree goes (None: such a checkout is refused)."""


@dataclass(frozen=True, kw_only=True)
class CompatRequest:
    refs: tuple[str, ...] = ()
    """The refs named; none: every pin (outside a superproject) or the recorded commit (in one)."""
    latest: bool = False
    forced_patch: Path | None = None
    """This patch for every ref, instead of the series' variant for each."""
    bump_to: str | None = None
    """In a superproject: the ref of a proposed bump (`latest` too)."""
    pre: bool = False
    """`latest` counts pre-releases too."""


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
    pre: bool = False
    """With the ref `latest`: pre-releases count too."""


@dataclass(frozen=True, kw_only=True)
class RefreshRequest:
    """`refresh`: the patch onto a ref, where the result goes, and how to settle what does not merge."""

    ref: str
    patches: tuple[Path, ...]
    """The patch to refresh, or a superproject's series, of which its Dockerfile patch is refreshed."""
    output: Path
    today: date
    force: bool = False
    conflicts: Path | None = None
    resolved: Path | None = None
    """REF's Dockerfile as the user resolved a conflict."""
    take_patch_side: bool = False
    shown_from: Path
    """The directory the patch is shown relative to (the superproject, else the current directory)."""
    pre: bool = False
    """With the ref `latest`: pre-releases count too."""


Take = Literal["variant", "refresh"]
"""How `bump` may make a patch fit that no longer does: the harness's variant for the ref, or the user's patch
rebased."""
TAKES: tuple[Take, ...] = get_args(Take)


@dataclass(frozen=True, kw_only=True)
class BumpRequest:
    """`bump [REF]`: where the submodule goes, how the patch may be made to fit, and what is written."""

    ref: str | None
    """None: make the patch fit the commit the superproject already records."""
    take: Take | None = None
    """Only this way of fitting the patch (None: the user's patch rebased first, then the harness's variant)."""
    pre: bool = False
    """With the ref `latest`: pre-releases count too."""
    today: date = field(default_factory=date.today)
    """The `Last-Update:` date a rebased patch carries."""
    dry_run: bool = False
    message_file: Path | None = None
    """Where the commit message goes (None: standard output)."""
    commit: bool = False


BuildStage = Literal["builder", "final"]
"""The Dockerfile stage a build ends at: `builder` (the default: cargo's output) or `final` (the shipped image)."""

DEFAULT_STAGE: BuildStage = BUILDER_STAGE
BUILD_STAGES: tuple[BuildStage, ...] = get_args(BuildStage)


@dataclass(frozen=True, kw_only=True)
class BuildSpec:
    """What `build` and `profile` build from and where: the same for every build of a run."""

    source: str
    """`standin`, `full` or a path, as the user gave it."""
    build_args: tuple[str, ...] = ()
    """KEY=VALUE, as given (each command applies its own defaults)."""
    stage: BuildStage = DEFAULT_STAGE
    forced_patch: Path | None = None
    air_gapped: bool | None = None
    """None: air-gapped when the registry's name does not resolve."""
    builder: str | None = None
    load: bool = False
    export: ExportFormat | None = None


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    ref: str
    spec: BuildSpec
    report_dir: Path | None = None
    trace: bool = False


@dataclass(frozen=True, kw_only=True)
class ProfileRequest:
    ref: str | None
    """None: the newest pin expected to apply."""
    names: tuple[str, ...]
    spec: BuildSpec
    interval: float
    report_dir: Path | None = None
    keep_images: bool = False


@dataclass(frozen=True, kw_only=True)
class AdviseRequest:
    memory: str
    cpus: int | None = None
    ref: str | None = None
    traces: tuple[Path, ...] = ()
    margin_percent: float | None = None
    plot: Path | None = None
