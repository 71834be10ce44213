"""The build knobs the patch exposes, and the facts about targets and binaries every layer shares.

One place for: the build-arg names and the defaults the patch documents, the Docker
architecture <-> Rust triple map, which binary a builder-stage shape moves where, and the
settings the integration builds use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final, Literal, get_args

from harness.errors import BadInput

JOBS = "CARGO_BUILD_JOBS"
LTO = "CARGO_PROFILE_RELEASE_LTO"
CODEGEN_UNITS = "CARGO_PROFILE_RELEASE_CODEGEN_UNITS"
TARGETS = "MAS_BUILD_TARGETS"
DESCRIBE = "VERGEN_GIT_DESCRIBE"
"""Upstream's build arg that MAS's `--version` shows. The harness sets it per run (`run_marker`) so the build step
runs instead of coming from the layer cache, and so this build's processes and binary carry a marker of their own."""
RUSTC_VERSION = "RUSTC_VERSION"
"""Upstream's build arg naming the Rust toolchain of the builder's base image."""
DEBIAN_VERSION_NAME = "DEBIAN_VERSION_NAME"
"""Upstream's build arg naming the Debian suite of the base images."""
MARKER_PREFIX = "mas-harness-"
"""What every per-run DESCRIBE value starts with, and only those."""

KNOB_DEFAULTS: Mapping[str, str] = {JOBS: "2", LTO: "false", CODEGEN_UNITS: "16", TARGETS: ""}
"""The defaults the patch documents in its header and declares as ARGs."""
CARGO_KNOBS = (JOBS, LTO, CODEGEN_UNITS)
"""The knobs cargo itself reads from its environment."""

ARCH_TRIPLES: Mapping[str, str] = {"amd64": "x86_64-unknown-linux-gnu", "arm64": "aarch64-unknown-linux-gnu"}
"""The Rust triple each Docker TARGETARCH builds."""
TRIPLE_ARCH: Mapping[str, str] = {triple: arch for arch, triple in ARCH_TRIPLES.items()}
SUPPORTED_TRIPLES = tuple(ARCH_TRIPLES.values())
ONE_TARGET = ARCH_TRIPLES["amd64"]

SAMPLE_INTERVAL = 0.25
"""Seconds between two samples of a build's processes and memory."""
PROFILE_SAMPLE_INTERVAL = 0.5
"""The same for `profile`, whose builds run for tens of minutes each (its `--interval` default)."""

MEMORY_MARGIN_PERCENT = 10.0
"""The room `advise` keeps under a memory budget by default: the model's validation target for the peak is 10 %,
so a prediction that fits with this margin still fits when it is off by that much."""

CI_BUILD_ARGS: Mapping[str, str] = {JOBS: "1", LTO: "false", TARGETS: ONE_TARGET}
"""What the integration builds (and the `ci` profile) use: one job, LTO off, one target."""

Shape = Literal["per-arch", "single"]
"""The builder-stage shape of a patched Dockerfile:
`per-arch` (to v1.17) moves each requested target to /usr/local/bin/mas-cli-<amd64|arm64>;
`single` (v1.18 on) builds the TARGETARCH target only and moves it to /usr/local/bin/mas-cli."""
SHAPES: tuple[Shape, ...] = get_args(Shape)

BUILDER_STAGE: Final = "builder"
"""The name of upstream's stage that compiles MAS and moves the binaries (FROM ... AS builder): what the final stages
copy from, and where a build stops by default."""

INSTALL_DIR = "/usr/local/bin/"
"""Where the builder stage moves the binaries it built, and the final stages copy them from."""
SHIPPED_BINARY = "/usr/local/bin/mas-cli"
"""Where every final stage puts the binary it copies from the builder stage: its ENTRYPOINT."""
ExportFormat = Literal["oci", "docker"]
"""How `--export` writes a built image into the report directory (buildx's `--output type=…`)."""
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)

TARGETARCH = "amd64"
"""The architecture the harness builds for: BuildKit's TARGETARCH on the amd64 machines it runs on."""

_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def run_marker(run_id: str) -> str:
    """This run's DESCRIBE value: the marker its build's processes and binary carry."""
    return f"{MARKER_PREFIX}{run_id}"


def is_run_marker(describe: str) -> bool:
    return describe.startswith(MARKER_PREFIX)


def binary_name(shape: Shape, triple: str) -> str:
    """The file under /usr/local/bin that the move step gives the binary built for `triple`."""
    return "mas-cli" if shape == "single" else f"mas-cli-{TRIPLE_ARCH.get(triple, '?')}"


def requested_targets(build_args: Mapping[str, str], *, targetarch: str = "amd64") -> list[str]:
    """What the patch builds for these args: MAS_BUILD_TARGETS, else the TARGETARCH triple."""
    return build_args.get(TARGETS, "").split() or [ARCH_TRIPLES[targetarch]]


def expected_binaries(targets: Sequence[str], *, shape: Shape) -> tuple[str, ...]:
    """What /usr/local/bin holds after the builder stage: one file per target, or (single) the one `mas-cli`."""
    return tuple(sorted({binary_name(shape, triple) for triple in targets}))


def is_arg_name(name: str) -> bool:
    return _ARG_NAME.fullmatch(name) is not None


def parse_build_args(pairs: Sequence[str], *, defaults: Mapping[str, str] | None = None) -> dict[str, str]:
    """`KEY=VALUE` words (as `--build-arg` takes them) over `defaults`; anything else is bad input."""
    args = dict(defaults or {})
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not is_arg_name(key):
            raise BadInput(f"--build-arg {pair!r} is not KEY=VALUE")
        args[key] = value
    return args
