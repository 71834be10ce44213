"""Upstream's own `[profile.release]`, read per ref from its top-level Cargo.toml.

Upstream does not keep one release profile forever: up to v1.21 it builds with fat LTO
and one codegen unit, from v1.22 with thin LTO and cargo's default codegen units. What a
ref's build costs, and how far the patch's defaults move it, depends on what that ref's
own Cargo.toml says, so it is read per ref rather than assumed.

Only the settings that change how much memory one rustc takes are kept: `lto`,
`codegen-units`, `debug` and `opt-level`. A setting the file does not give is cargo's
default for the release profile, and says so.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

from harness.config.profiles import BASELINE, Profile
from harness.errors import BadInput
from harness.knobs import CODEGEN_UNITS, JOBS, LTO, ONE_TARGET, TARGETS
from harness.upstream.cache import CARGO_TOML, ResolvedRef, UpstreamCache

FROM_FILE = "Cargo.toml [profile.release]"
FROM_CARGO = "cargo's default"

# Cargo's release-profile defaults (doc.rust-lang.org/cargo/reference/profiles.html#release).
CARGO_DEFAULTS: Mapping[str, str] = {"lto": "false", "codegen-units": "16", "debug": "false", "opt-level": "3"}
KEYS = tuple(CARGO_DEFAULTS)

# How heavy each `lto` setting is for the final rustc, lightest first: `off` is no LTO at all,
# `false` cargo's default (thin LTO within one crate only), `thin` across crates, `fat` whole-program.
_LTO_WEIGHT = {"off": 0, "false": 1, "thin": 2, "true": 3, "fat": 3}
_LTO_WORDS = {"off": "LTO off", "false": "no cross-crate LTO", "thin": "thin LTO", "true": "fat LTO", "fat": "fat LTO"}


@dataclass(frozen=True, kw_only=True)
class Setting:
    key: str
    value: str
    """As cargo reads it from the environment (`CARGO_PROFILE_RELEASE_<KEY>`): `true`, `thin`, `1` ..."""
    source: str
    """FROM_FILE or FROM_CARGO."""

    def describe(self) -> str:
        return f"{self.key} = {self.value} ({self.source})"


@dataclass(frozen=True, kw_only=True)
class ReleaseProfile:
    """`[profile.release]` of one ref, each setting with where it came from."""

    settings: Mapping[str, Setting]
    found: bool
    """False when the ref has no top-level Cargo.toml: every setting is then cargo's default."""

    def __getitem__(self, key: str) -> Setting:
        return self.settings[key]

    @property
    def lto(self) -> str:
        return self.settings["lto"].value

    @property
    def codegen_units(self) -> int:
        return int(self.settings["codegen-units"].value)

    def describe(self) -> str:
        """One line, e.g. `lto = true, codegen-units = 1 (Cargo.toml [profile.release])`."""
        return "; ".join(setting.describe() for setting in self.settings.values())


def _env_value(key: str, raw: object, where: str) -> str:
    """A TOML value as cargo's environment spelling of it; anything cargo itself would refuse is bad input."""
    if key == "lto":
        text = str(raw).lower() if isinstance(raw, bool | str) else None
        if text not in _LTO_WEIGHT:
            raise BadInput(f'{where}: `lto = {raw!r}` is not one of true, false, "fat", "thin", "off"')
        return text
    if key == "codegen-units":
        if not isinstance(raw, int) or isinstance(raw, bool) or raw < 1:
            raise BadInput(f"{where}: `codegen-units = {raw!r}` is not a positive integer")
        return str(raw)
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, int | str):
        return str(raw)
    raise BadInput(f"{where}: `{key} = {raw!r}` is neither a number, a string nor a boolean")


def parse_release_profile(text: str | None, *, where: str = CARGO_TOML) -> ReleaseProfile:
    """The release profile a Cargo.toml gives (None: no Cargo.toml, all of cargo's defaults)."""
    table: Mapping[str, object] = {}
    if text is not None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{where} is not valid TOML: {exc}") from None
        profile = data.get("profile", {})
        release = profile.get("release", {}) if isinstance(profile, dict) else {}
        if not isinstance(release, dict):
            raise BadInput(f"{where}: [profile.release] is not a table")
        table = release
    settings = {}
    for key, default in CARGO_DEFAULTS.items():
        if key in table:
            value, source = _env_value(key, table[key], where), FROM_FILE
        else:
            value, source = default, FROM_CARGO
        settings[key] = Setting(key=key, value=value, source=source)
    return ReleaseProfile(settings=settings, found=text is not None)


def lto_words(value: str) -> str:
    return _LTO_WORDS.get(value, value)


def _against_defaults(profile: ReleaseProfile, defaults: Mapping[str, str], *, ref: str) -> list[tuple[bool, str]]:
    """Knob by knob: whether upstream is already as light as the patch's default, and the sentence that says so."""
    lto_default = defaults[LTO].lower()
    units_default = int(defaults[CODEGEN_UNITS])
    upstream_lto, upstream_units = profile.lto, profile.codegen_units
    if _LTO_WEIGHT[upstream_lto] <= _LTO_WEIGHT.get(lto_default, 0):
        lto = (True, f"upstream already builds with {lto_words(upstream_lto)}, as light as the patch's default")
    else:
        lto = (
            False,
            f"upstream builds with {lto_words(upstream_lto)} (lto = {upstream_lto}) at {ref}; "
            f"the patch's default is {lto_words(lto_default)} (lto = {lto_default})",
        )
    if upstream_units >= units_default:
        source = " (cargo's default)" if profile["codegen-units"].source == FROM_CARGO else ""
        units = (True, f"upstream already uses {upstream_units} codegen units{source}, the patch's default")
    else:
        units = (False, f"upstream uses {upstream_units} codegen unit(s); the patch's default is {units_default}")
    return [lto, units]


def compare_with_defaults(profile: ReleaseProfile, defaults: Mapping[str, str], *, ref: str) -> str:
    """One sentence: what upstream builds with at `ref`, against the patch's defaults, knob by knob.

    `defaults` are the patch's build-arg defaults (CARGO_PROFILE_RELEASE_LTO and _CODEGEN_UNITS).
    """
    return "; ".join(sentence for _, sentence in _against_defaults(profile, defaults, ref=ref))


def matches_a_default(profile: ReleaseProfile, defaults: Mapping[str, str]) -> bool:
    """Whether upstream already builds at least one knob as lightly as the patch's default does."""
    return any(already for already, _ in _against_defaults(profile, defaults, ref=""))


def describe_change(before: ReleaseProfile, after: ReleaseProfile, *, old: str, new: str) -> str | None:
    """One line when the release profile differs between two refs (a submodule bump), else None."""
    changed = [key for key in KEYS if before[key].value != after[key].value]
    if not changed:
        return None
    moves = ", ".join(f"{key} {before[key].value} -> {after[key].value}" for key in changed)
    return f"upstream's release profile changes from {old} to {new}: {moves}"


def upstream_profile(release: ReleaseProfile, *, ref: str, cpus: int | None = None) -> Profile:
    """What upstream's own build of `ref` does for one target: its Cargo.toml's LTO and codegen units,
    cargo's default parallelism (one job per CPU).

    Every knob is given explicitly: the patched Dockerfile's own defaults would otherwise replace
    upstream's settings through the environment.
    """
    jobs = str(cpus or os.cpu_count() or 1)
    lto, units = release["lto"], release["codegen-units"]
    where = f"{ref} {lto.source}" if lto.source != FROM_CARGO else f"{lto.source} ({ref} does not set it)"
    units_where = f"{ref} {units.source}" if units.source != FROM_CARGO else f"{units.source} ({ref} does not set it)"
    return Profile(
        name=BASELINE,
        description=f"what upstream's own build of {ref} does for one target: lto = {lto.value}, "
        f"codegen-units = {units.value}, jobs = CPUs ({jobs})",
        build_args={
            JOBS: jobs,
            LTO: lto.value,
            CODEGEN_UNITS: units.value,
            TARGETS: ONE_TARGET,
        },
        sources={
            JOBS: "cargo's default: one job per CPU",
            LTO: where,
            CODEGEN_UNITS: units_where,
            TARGETS: "one target, as every profile here builds",
        },
    )


def release_profile_of(cache: UpstreamCache, resolved: ResolvedRef) -> ReleaseProfile:
    """The release profile of a resolved ref, read through the checkout cache (one more blob)."""
    blob = resolved.cargo_toml_blob
    text = cache.read_blob(blob).decode("utf-8", errors="replace") if blob else None
    return parse_release_profile(text, where=f"{resolved.ref}:{CARGO_TOML}")
