"""Patch variants by upstream release range: which patch a ref takes, and why.

Part of the configuration layer (beside `config`): it reads `patches/series.toml`
and answers from version numbers alone; finding the nearest release tag of a
branch or commit is left to the layers that can look at git history.

A range is `[from, until)`: `from` is the first release a variant is for, `until`
the first release it is not for (absent: no end). A ref outside every range takes
the variant of the nearest lower range, and the choice says so.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.version import InvalidVersion, Version

from harness.config.tomlfile import refuse_unknown, require_toml, string_at, tables_at
from harness.errors import BadInput
from harness.knobs import SHAPES, Shape

Basis = Literal["in-range", "nearest-lower", "lowest", "newest", "only", "forced"]

# MAS tags are `vMAJOR.MINOR.PATCH` and `vMAJOR.MINOR.PATCH-rc.N`. Without the leading
# `v` a short commit id such as `1234567` would read as a version.
_TAG_SHAPE = re.compile(r"^v\d+(\.\d+)+")


def tag_version(ref: str) -> Version | None:
    """The version a tag name stands for, or None for a branch, commit or other name."""
    if not _TAG_SHAPE.match(ref):
        return None
    try:
        return Version(ref)
    except InvalidVersion:
        return None


def newest_release(tags: Iterable[str], *, prerelease_fallback: bool = True) -> str | None:
    """The newest release tag, ignoring pre-releases (`-rc.N`) unless there is no release at all (and allowed)."""
    versions = [(v, t) for t in set(tags) if (v := tag_version(t)) is not None]
    releases = [(v, t) for v, t in versions if not v.is_prerelease and not v.is_devrelease]
    pool = releases or (versions if prerelease_fallback else [])
    return max(pool)[1] if pool else None


@dataclass(frozen=True, kw_only=True)
class Variant:
    name: str
    patch: Path
    first: str | None
    """The first release of the range (None: no lower bound)."""
    until: str | None
    """The first release after the range (None: no upper bound)."""
    shape: Shape | None
    """None only for a series made from a single patch, whose shape the static checks read from the file."""

    @property
    def range_text(self) -> str:
        if self.first is None and self.until is None:
            return "every release"
        return f"[{self.first or ''}, {self.until or ''})"

    def contains(self, version: Version) -> bool:
        low = tag_version(self.first) if self.first else None
        high = tag_version(self.until) if self.until else None
        return (low is None or version >= low) and (high is None or version < high)


@dataclass(frozen=True, kw_only=True)
class Choice:
    """The variant a ref takes, how it was found, and one sentence saying so."""

    variant: Variant
    basis: Basis
    version_tag: str | None
    """The tag whose version decided: the ref itself, or its nearest release tag; None if no version was known."""
    reason: str


@dataclass(frozen=True, kw_only=True)
class Series:
    variants: tuple[Variant, ...]
    """Ordered by range, lowest first; ranges do not overlap."""
    source: Path | None

    @property
    def newest(self) -> Variant:
        return self.variants[-1]

    def by_patch(self, patch: Path) -> Variant | None:
        return next((v for v in self.variants if v.patch.resolve() == patch.resolve()), None)

    def choose(self, ref: str, *, described: str | None = None) -> Choice:
        """The variant for `ref`: by its own version, else by `described` (its nearest release tag), else the newest.

        `described` is the nearest lower release tag of a branch or commit (the newest
        release tag in its history); it is ignored when `ref` is itself a version tag.
        """
        if len(self.variants) == 1 and self.variants[0].first is None and self.variants[0].until is None:
            only = self.variants[0]
            return Choice(variant=only, basis="only", version_tag=None, reason=f"{ref}: the one patch configured")
        version = tag_version(ref)
        if version is not None:
            return self._by_version(ref, version, prefix=f"{ref}")
        described_version = tag_version(described) if described else None
        if described and described_version is not None:
            prefix = f"{ref}: not a release tag; the newest release tag in its fetched history is {described}"
            return self._by_version(described, described_version, prefix=prefix)
        return Choice(
            variant=self.newest,
            basis="newest",
            version_tag=None,
            reason=f"{ref}: not a release tag, and no release tag in its fetched history; "
            f"using the newest range, the {self.newest.name} variant",
        )

    def _by_version(self, tag: str, version: Version, *, prefix: str) -> Choice:
        for variant in self.variants:
            if variant.contains(version):
                return Choice(
                    variant=variant,
                    basis="in-range",
                    version_tag=tag,
                    reason=f"{prefix}: in the {variant.name} range {variant.range_text}",
                )
        lower = [v for v in self.variants if v.first is None or Version(v.first) <= version]
        if lower:
            variant = lower[-1]
            return Choice(
                variant=variant,
                basis="nearest-lower",
                version_tag=tag,
                reason=f"{prefix}: outside every range; using the {variant.name} variant (nearest lower range)",
            )
        variant = self.variants[0]
        return Choice(
            variant=variant,
            basis="lowest",
            version_tag=tag,
            reason=f"{prefix}: below every range; using the {variant.name} variant (the lowest range)",
        )


def single_patch_series(patch: Path) -> Series:
    """A pins file with `default_patch` and no series: that one patch for every ref."""
    return Series(
        variants=(Variant(name=patch.name, patch=patch, first=None, until=None, shape=None),),
        source=None,
    )


_VARIANT_KEYS = ("name", "patch", "from", "until", "shape")


def _text(table: Mapping[str, object], key: str, where: str, *, required: bool = True) -> str | None:
    value = string_at(table, key, where)
    if value is None and required:
        raise BadInput(f"{where}: `{key}` must be a non-empty string")
    return value


def _release(table: Mapping[str, object], key: str, where: str, *, required: bool) -> str | None:
    tag = _text(table, key, where, required=required)
    if tag is not None and tag_version(tag) is None:
        raise BadInput(f"{where}: `{key}` = {tag!r} is not a release tag such as v1.18.0")
    return tag


def load_series(path: Path) -> Series:
    data = require_toml(path, "series file")
    refuse_unknown(data, ("variant",), path.name)
    raw_variants = tables_at(data.get("variant", []), f"{path.name}: `variant`")
    if not raw_variants:
        raise BadInput(f"series file {path} has no [[variant]]")
    variants: list[Variant] = []
    for index, raw in enumerate(raw_variants):
        where = f"{path.name} variant #{index + 1}"
        name = _text(raw, "name", where) or ""
        where = f"{path.name} variant {name}"
        refuse_unknown(raw, _VARIANT_KEYS, where)
        patch = path.parent / (_text(raw, "patch", where) or "")
        if not patch.is_file():
            raise BadInput(f"{where}: patch {patch} does not exist")
        shape = _text(raw, "shape", where)
        if shape not in SHAPES:
            raise BadInput(f"{where}: `shape` must be one of {', '.join(SHAPES)}, not {shape!r}")
        first = _release(raw, "from", where, required=True)
        until = _release(raw, "until", where, required=False)
        if first and until and Version(until) <= Version(first):
            raise BadInput(f"{where}: `until` {until} is not after `from` {first}")
        variants.append(Variant(name=name, patch=patch, first=first, until=until, shape=shape))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise BadInput(f"series file {path}: a variant name is used twice ({', '.join(names)})")
    variants.sort(key=lambda v: Version(v.first or "0"))
    for lower, upper in itertools.pairwise(variants):
        if lower.until is None or Version(lower.until) > Version(upper.first or "0"):
            raise BadInput(
                f"series file {path}: the ranges of {lower.name} {lower.range_text} and "
                f"{upper.name} {upper.range_text} overlap"
            )
    return Series(variants=tuple(variants), source=path)
