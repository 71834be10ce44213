from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.analysis.compat import check_refs, refs_to_check, resolvable_refs
from harness.analysis.submodule_checks import check_bump, verify
from harness.cli.commands.run_context import open_checks, with_run_facts
from harness.config.settings import Settings
from harness.config.superproject import SuperprojectConfig
from harness.patch.patchfile import Patch
from harness.report.views import compat_outcome, superproject_outcome
from harness.results import Outcome
from harness.upstream.cache import open_cache


def compat(
    *,
    refs: Sequence[str],
    latest: bool,
    forced_patch: Path | None,
    settings: Settings,
) -> Outcome:
    """Pins mode: every pin, or the refs named (and the newest release with `latest`)."""
    if forced_patch is not None:
        Patch.load(forced_patch)  # bad input is reported before any fetch
    cache = open_cache(settings)
    checks = open_checks(settings)
    good, errors = resolvable_refs(cache, refs_to_check(cache, settings.pins, refs=refs, latest=latest))
    results = check_refs(cache, good, pins=settings.pins, checks=checks, forced_patch=forced_patch)
    outcome = compat_outcome(results, upstream=settings.upstream, errors=errors)
    return with_run_facts(outcome, checks=checks, upstream=settings.upstream, offline=settings.offline)


def compat_superproject(*, superproject: SuperprojectConfig, bump_to: str | None, settings: Settings) -> Outcome:
    """In a superproject: the recorded commit (verify without the static checks), or the ref of a bump."""
    checks = open_checks(settings)
    if bump_to is not None:
        check = check_bump(superproject, bump_to, settings=settings, checks=checks)
    else:
        check = verify(superproject, settings=settings, checks=checks, static=False)
    outcome = superproject_outcome(check, command="compat")
    return with_run_facts(outcome, checks=checks, upstream=check.source, offline=settings.offline)
