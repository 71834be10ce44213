"""The build-arg scenarios a patched Dockerfile's build script is run with, per builder-stage shape.

Good scenarios must build exactly their expected targets; bad ones must be refused
before rustup or cargo run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.knobs import ARCH_TRIPLES, CODEGEN_UNITS, JOBS, LTO, SUPPORTED_TRIPLES, TARGETS, Shape, binary_name

# Values no default has, so seeing them in cargo's environment proves the
# build arg reached it (through ARG and ENV), not some hard-coded value.
KNOB_PROBES: Mapping[str, str] = {
    JOBS: "1",
    LTO: "thin",
    CODEGEN_UNITS: "7",
}

# The literal destination prefix of the move step, redirected into a temporary
# directory for execution (the only change made to the script text).


@dataclass(frozen=True, kw_only=True)
class Scenario:
    label: str
    build_args: Mapping[str, str]
    targetarch: str
    expected: tuple[str, ...]  # triples; () for input that must be refused
    workdir_files: tuple[str, ...] = ()


_BOTH = " ".join(SUPPORTED_TRIPLES)
GOOD_SCENARIOS = (
    Scenario(label="defaults, TARGETARCH=amd64", build_args={}, targetarch="amd64", expected=(ARCH_TRIPLES["amd64"],)),
    Scenario(label="defaults, TARGETARCH=arm64", build_args={}, targetarch="arm64", expected=(ARCH_TRIPLES["arm64"],)),
    Scenario(
        label="both targets, knobs set",
        build_args={TARGETS: _BOTH, **KNOB_PROBES},
        targetarch="amd64",
        expected=SUPPORTED_TRIPLES,
    ),
    Scenario(
        label="aarch64 only, TARGETARCH=amd64",
        build_args={TARGETS: ARCH_TRIPLES["arm64"]},
        targetarch="amd64",
        expected=(ARCH_TRIPLES["arm64"],),
    ),
)
BAD_SCENARIOS = (
    Scenario(
        label="unknown triple",
        build_args={TARGETS: "riscv64gc-unknown-linux-gnu"},
        targetarch="amd64",
        expected=(),
    ),
    Scenario(
        label="duplicated triple",
        build_args={TARGETS: f"{ARCH_TRIPLES['amd64']} {ARCH_TRIPLES['amd64']}"},
        targetarch="amd64",
        expected=(),
    ),
    Scenario(
        label="command injection",
        build_args={TARGETS: f"{ARCH_TRIPLES['amd64']};touch pwned"},
        targetarch="amd64",
        expected=(),
    ),
    # A file named like a triple in the working directory: an unquoted, unset -f
    # expansion of the pattern would turn into a valid-looking target. Not `*`:
    # it would also match target/ (the cache mount) and be refused by luck.
    Scenario(
        label="glob",
        build_args={TARGETS: "x86_64-*"},
        targetarch="amd64",
        expected=(),
        workdir_files=(ARCH_TRIPLES["amd64"],),
    ),
    Scenario(label="empty, unsupported TARGETARCH", build_args={}, targetarch="riscv64", expected=()),
)


SINGLE_GOOD_SCENARIOS = (
    *GOOD_SCENARIOS[:2],
    Scenario(
        label="the TARGETARCH triple named, knobs set",
        build_args={TARGETS: ARCH_TRIPLES["amd64"], **KNOB_PROBES},
        targetarch="amd64",
        expected=(ARCH_TRIPLES["amd64"],),
    ),
    Scenario(
        label="the TARGETARCH triple named, TARGETARCH=arm64",
        build_args={TARGETS: ARCH_TRIPLES["arm64"]},
        targetarch="arm64",
        expected=(ARCH_TRIPLES["arm64"],),
    ),
)
SINGLE_BAD_SCENARIOS = (
    *BAD_SCENARIOS,
    # One build makes one binary, /usr/local/bin/mas-cli, for TARGETARCH: anything else is refused.
    Scenario(label="both targets", build_args={TARGETS: _BOTH}, targetarch="amd64", expected=()),
    Scenario(
        label="the other architecture's triple",
        build_args={TARGETS: ARCH_TRIPLES["arm64"]},
        targetarch="amd64",
        expected=(),
    ),
)


@dataclass(frozen=True, kw_only=True)
class ShapeRules:
    """What a patched Dockerfile of one builder-stage shape must do (see harness/series.py)."""

    shape: Shape
    good: tuple[Scenario, ...]
    bad: tuple[Scenario, ...]

    def binary(self, triple: str) -> str:
        """The file under /usr/local/bin the move step gives the binary built for `triple`."""
        return binary_name(self.shape, triple)


SHAPE_RULES: Mapping[Shape, ShapeRules] = {
    "per-arch": ShapeRules(shape="per-arch", good=GOOD_SCENARIOS, bad=BAD_SCENARIOS),
    "single": ShapeRules(shape="single", good=SINGLE_GOOD_SCENARIOS, bad=SINGLE_BAD_SCENARIOS),
}
