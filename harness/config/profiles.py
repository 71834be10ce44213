"""Knob profiles: named sets of build args that `profile` builds side by side (configuration layer).

Four are built in: the patch's defaults (`low-ram`), the integration setting (`ci`), the
historical upstream settings (`fat-lto`) and `upstream`, which is what the ref's own Cargo.toml
and Dockerfile do for one target (made by harness.analysis.release_profile once that Cargo.toml
is read). More
come from `[profiles.NAME]` tables of the pins file, e.g.

    [profiles.sixteen-gb]
    description = "what the users' README suggests for a 16 GB machine"
    build_args = { CARGO_BUILD_JOBS = "4" }
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from harness.config.tomlfile import refuse_unknown, string_at
from harness.errors import BadInput
from harness.knobs import CI_BUILD_ARGS, CODEGEN_UNITS, JOBS, LTO, ONE_TARGET, TARGETS, is_arg_name

BASELINE = "upstream"
"""The profile every other one is compared with: what upstream's own build of the ref does."""
FAT_LTO = "fat-lto"
"""Upstream's settings up to v1.21 (fat LTO, one codegen unit), kept as a fixed historical baseline."""
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    description: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    """Where each build arg's value came from, where that is not the profile's own definition."""


def builtin_profiles(cpus: int | None = None) -> dict[str, Profile]:
    """The profiles that need nothing of the ref; `upstream` is added by `upstream_profile()`."""
    jobs = str(cpus or os.cpu_count() or 1)
    return {
        "low-ram": Profile(
            name="low-ram",
            description="the patch's defaults (2 jobs, LTO off, 16 codegen units, the TARGETARCH target)",
        ),
        "ci": Profile(
            name="ci",
            description="the integration setting: 1 job, LTO off, x86_64 only",
            build_args=dict(CI_BUILD_ARGS),
        ),
        FAT_LTO: Profile(
            name=FAT_LTO,
            description=f"upstream's settings to v1.21, one target: fat LTO, 1 codegen unit, jobs = CPUs ({jobs})",
            build_args={JOBS: jobs, LTO: "fat", CODEGEN_UNITS: "1", TARGETS: ONE_TARGET},
        ),
    }


def configured_profiles(data: Mapping[str, object], *, source: str) -> dict[str, Profile]:
    """The `[profiles.NAME]` tables of a parsed pins file; a name may not shadow a built-in profile."""
    configured = data.get("profiles", {})
    if not isinstance(configured, dict):
        raise BadInput(f"{source}: `profiles` must be a table of tables")
    builtin = {*builtin_profiles(), BASELINE}
    profiles: dict[str, Profile] = {}
    for name, table in configured.items():
        where = f"{source} [profiles.{name}]"
        if not _NAME.fullmatch(name):
            raise BadInput(f"{where}: a profile name is lower case letters, digits, '.', '_' or '-'")
        if name in builtin:
            raise BadInput(f"{where}: {name!r} is a built-in profile; pick another name")
        if not isinstance(table, dict):
            raise BadInput(f"{where}: must be a table")
        refuse_unknown(table, ("description", "build_args"), where)
        description = string_at(table, "description", where) or "configured in the pins file"
        build_args = table.get("build_args", {})
        if not isinstance(build_args, dict) or not all(
            isinstance(value, str) and is_arg_name(key) for key, value in build_args.items()
        ):
            raise BadInput(
                f'{where}: `build_args` must map build arg names to strings, e.g. {{ CARGO_BUILD_JOBS = "4" }}'
            )
        profiles[name] = Profile(name=name, description=description, build_args=build_args)
    return profiles


def select_profiles(available: Mapping[str, Profile], names: list[str]) -> list[Profile]:
    unknown = [name for name in names if name not in available]
    if unknown:
        raise BadInput(f"unknown profile {', '.join(map(repr, unknown))}; known: {', '.join(available)}")
    return [available[name] for name in dict.fromkeys(names)]
