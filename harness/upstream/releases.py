"""`latest`: a word accepted wherever a ref is, standing for the newest release tag of the upstream a command reads.

It is looked up in the listing of the upstream's refs the run makes anyway (one `git ls-remote`, remembered by
the cache), so naming `latest` costs no extra round trip to the remote.
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.config.series import tag_version
from harness.errors import BadInput, UpstreamError
from harness.upstream.cache import UpstreamCache

LATEST = "latest"
"""The ref that means "the newest release": a branch or tag of that name upstream is not reachable by it."""


def newest_tag(tags: Iterable[str], *, pre: bool) -> str | None:
    """The highest version tag (`vX.Y.Z`, semantic order): releases only, pre-releases too with `pre`."""
    versions = [(v, t) for t in set(tags) if (v := tag_version(t)) is not None]
    pool = versions if pre else [(v, t) for v, t in versions if not v.is_prerelease and not v.is_devrelease]
    return max(pool)[1] if pool else None


def latest_tag(cache: UpstreamCache, *, pre: bool) -> str:
    """The newest release tag of the cache's upstream, from the run's listing of its refs."""
    require_online(offline=cache.offline)
    tags = cache.remote_tags()
    newest = newest_tag(tags, pre=pre)
    if newest is None:
        raise UpstreamError(no_release_message(cache.source.location, tags, pre=pre))
    return newest


def require_online(*, offline: bool) -> None:
    if offline:
        raise BadInput(
            f"`{LATEST}` (or --latest) asks the upstream for its newest release, and --offline asks it nothing: "
            "drop one, or name the tag"
        )


def no_release_message(location: str, tags: Iterable[str], *, pre: bool) -> str:
    rc = None if pre else newest_tag(tags, pre=True)
    hint = f" (its newest pre-release is {rc}: pass --pre to take it)" if rc else ""
    return f"`{LATEST}`: upstream {location} has no version tag such as v1.19.0{hint}"


def pick_latest(cache: UpstreamCache, ref: str, *, pre: bool) -> tuple[str, str | None]:
    """(the ref to resolve, the tag `latest` stood for or None): any other ref is passed through unchanged."""
    if ref != LATEST:
        return ref, None
    tag = latest_tag(cache, pre=pre)
    return tag, tag


def latest_note(tag: str, *, source: str) -> str:
    """What the output says first when `latest` was asked for."""
    return f"{LATEST} is {tag} (the newest release tag of {source})"
