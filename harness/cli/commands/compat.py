from __future__ import annotations

from harness.analysis.compat import check_refs, refs_to_check
from harness.analysis.submodule_checks import check_bump, verify
from harness.cli.commands.run_context import open_checks, with_run_facts
from harness.config.requests import CompatRequest
from harness.config.run import Run
from harness.patch.patchfile import Patch
from harness.report.views import compat_outcome, superproject_outcome
from harness.results import Outcome
from harness.upstream.cache import open_cache


def compat(run: Run, request: CompatRequest) -> Outcome:
    """Every pin, or the refs named (and the newest release with `latest`); in a superproject, the recorded commit
    (verify without the static checks), or the ref of a bump."""
    if run.superproject is not None:
        return _compat_superproject(run, request)
    if request.forced_patch is not None:
        Patch.load(request.forced_patch)  # bad input is reported before any fetch
    cache = open_cache(run)
    checks = open_checks(run)
    results = check_refs(
        cache,
        refs_to_check(cache, run.pins, refs=request.refs, latest=request.latest),
        pins=run.pins,
        checks=checks,
        forced_patch=request.forced_patch,
    )
    upstream = run.pins_upstream()
    outcome = compat_outcome(results, upstream=upstream)
    return with_run_facts(outcome, checks=checks, upstream=upstream, offline=run.offline)


def _compat_superproject(run: Run, request: CompatRequest) -> Outcome:
    checks = open_checks(run)
    if request.bump_to is not None:
        check = check_bump(run, request.bump_to, checks=checks)
    else:
        check = verify(run, checks=checks, static=False)
    outcome = superproject_outcome(check, command="compat")
    return with_run_facts(outcome, checks=checks, upstream=check.source, offline=run.offline)
