"""What compat, check and verify share: the upstream cache and verdict store of a run, and what the run says of them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.analysis.verdicts import VerdictCache
from harness.config.pins import Settings
from harness.results import Outcome
from harness.upstream.cache import UpstreamCache
from harness.upstream.source import UpstreamSource


def open_cache(settings: Settings) -> UpstreamCache:
    upstream = settings.upstream
    local = Path(upstream).expanduser()
    if settings.offline and "://" not in upstream and not local.exists():
        # Offline, a local upstream that is gone (a bundle on a disk not mounted now) is still found in the
        # cache under its name; its kind matters only to fetching, which offline never does.
        source = UpstreamSource(location=str(local.resolve()), kind="path")
    else:
        source = UpstreamSource.parse(upstream)
    return UpstreamCache(settings.cache_dir, source, offline=settings.offline)


def open_verdicts(settings: Settings) -> VerdictCache:
    """The stored static verdicts under the cache directory; with `--no-cache` each is computed again."""
    return VerdictCache.in_cache_dir(settings.cache_dir, reuse=settings.use_verdict_cache)


def offline_note(upstream: str) -> str:
    return (
        f"offline: refs were answered from the cache alone, without asking {upstream} where they point now; "
        "a branch or tag moved since it was cached is not seen (run without --offline to look)"
    )


def with_run_facts(outcome: Outcome, *, upstream: str, offline: bool, verdicts: VerdictCache) -> Outcome:
    """`offline` and `verdicts` in the JSON, and a note when the upstream was not asked."""
    notes = (*outcome.notes, offline_note(upstream)) if offline else outcome.notes
    return replace(outcome, notes=notes, data={**outcome.data, "offline": offline, "verdicts": verdicts.as_json()})
