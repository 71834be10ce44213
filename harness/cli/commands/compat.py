from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.analysis.compat import check_refs, latest_release_tag, refs_to_check, resolvable_refs
from harness.analysis.submodule_checks import check_bump, verify
from harness.cli.commands.run_context import open_checks, with_run_facts
from harness.config.settings import Settings
from harness.config.superproject import SuperprojectConfig
from harness.errors import BadInput
from harness.patch.patchfile import Patch
from harness.report.views import compat_outcome, superproject_outcome, with_latest
from harness.results import Outcome
from harness.upstream.cache import open_cache
from harness.upstream.releases import LATEST


def compat(
    *,
    refs: Sequence[str],
    latest: bool,
    forced_patch: Path | None,
    settings: Settings,
    pre: bool = False,
) -> Outcome:
    """Pins mode: every pin, or the refs named (and the newest release with `latest`, pre-releases too with `pre`)."""
    if forced_patch is not None:
        Patch.load(forced_patch)  # bad input is reported before any fetch
    cache = open_cache(settings)
    checks = open_checks(settings)
    good, errors = resolvable_refs(cache, refs_to_check(cache, settings.pins, refs=refs, latest=latest, pre=pre))
    results = check_refs(cache, good, pins=settings.pins, checks=checks, forced_patch=forced_patch)
    outcome = compat_outcome(results, upstream=settings.upstream, errors=errors)
    # The listing is the run's own, remembered by the cache: naming the tag again asks the remote nothing more.
    newest = latest_release_tag(cache, pre=pre) if latest or LATEST in refs else None
    outcome = with_latest(outcome, newest, source=cache.source.location)
    return with_run_facts(outcome, checks=checks, upstream=settings.upstream, offline=settings.offline)


def asks_latest(*, refs: Sequence[str], latest: bool) -> bool:
    return latest or LATEST in refs


def superproject_bump_ref(*, bump_to: str | None, refs: Sequence[str], latest: bool) -> str | None:
    """The ref a superproject's compat checks a bump to: --bump-to REF, or the newest release asked for as
    `--latest` or `latest` (the same question); other refs name nothing a superproject would bump to."""
    if not refs and not latest:
        return bump_to
    if bump_to is None and list(dict.fromkeys(refs)) in ([], [LATEST]):
        return LATEST
    raise BadInput("in a superproject, name the ref to check with --bump-to REF (or `--bump-to latest`)")


def compat_superproject(
    *, superproject: SuperprojectConfig, bump_to: str | None, settings: Settings, pre: bool = False
) -> Outcome:
    """In a superproject: the recorded commit (verify without the static checks), or the ref of a bump."""
    checks = open_checks(settings)
    if bump_to is not None:
        check = check_bump(superproject, bump_to, settings=settings, checks=checks, pre=pre)
    else:
        check = verify(superproject, settings=settings, checks=checks, static=False)
    outcome = superproject_outcome(check, command="compat")
    return with_run_facts(outcome, checks=checks, upstream=check.source, offline=settings.offline)
