from __future__ import annotations

from collections.abc import Sequence

from harness.analysis.compat import check_refs, latest_release_tag, refs_to_check, resolvable_refs
from harness.analysis.submodule_checks import check_bump, verify
from harness.cli.commands.run_context import open_analysis
from harness.config.requests import CompatRequest
from harness.config.run import Run
from harness.errors import BadInput
from harness.patch.patchfile import Patch
from harness.report.run_frame import checks_frame, latest_frame
from harness.report.views import compat_outcome, superproject_outcome
from harness.results import Outcome
from harness.upstream.cache import open_cache
from harness.upstream.releases import LATEST


def compat(run: Run, request: CompatRequest) -> Outcome:
    """Every pin, or the refs named (and the newest release with `latest`, pre-releases too with `pre`); in a
    superproject, the recorded commit (verify without the static checks), or the ref of a bump."""
    if run.superproject is not None:
        return _compat_superproject(run, request)
    if request.forced_patch is not None:
        Patch.load(request.forced_patch)  # bad input is reported before any fetch
    cache = open_cache(run)
    analysis = open_analysis(run)
    refs, pre = request.refs, request.pre
    good, errors = resolvable_refs(cache, refs_to_check(cache, run.pins, refs=refs, latest=request.latest, pre=pre))
    results = check_refs(cache, good, pins=run.pins, analysis=analysis, forced_patch=request.forced_patch)
    upstream = run.pins_upstream()
    # The listing is the run's own, remembered by the cache: naming the tag again asks the remote nothing more.
    newest = latest_release_tag(cache, pre=pre) if asks_latest(refs=refs, latest=request.latest) else None
    frame = latest_frame(newest, source=cache.source.location).within(
        checks_frame(analysis.checks, upstream=upstream, offline=run.offline)
    )
    return compat_outcome(results, upstream=upstream, errors=errors, frame=frame)


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


def _compat_superproject(run: Run, request: CompatRequest) -> Outcome:
    analysis = open_analysis(run)
    if request.bump_to is not None:
        check = check_bump(run, request.bump_to, analysis=analysis, pre=request.pre)
    else:
        check = verify(run, analysis=analysis, static=False)
    frame = checks_frame(analysis.checks, upstream=check.source, offline=run.offline)
    return superproject_outcome(check, command="compat", frame=frame)
