"""What compat, check and verify share: the verdict store of a run, and what the run says of it."""

from __future__ import annotations

from dataclasses import replace

from harness.analysis.verdicts import VerdictCache
from harness.config.pins import Settings
from harness.results import Outcome


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
