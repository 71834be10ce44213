"""What compat, check and verify share: the verdict store of a run and how it runs upstream's scripts."""

from __future__ import annotations

from harness.analysis.confine import detect
from harness.analysis.patched import Analysis
from harness.analysis.static import StaticChecks
from harness.analysis.verdicts import VerdictCache
from harness.config.run import Run


def open_checks(run: Run) -> StaticChecks:
    """The run's static checks: upstream's build script confined if the machine allows it (else as `--unconfined`
    says), and the stored verdicts under the cache directory (with `--no-cache` each is computed again)."""
    return StaticChecks(
        confinement=detect(unconfined=run.unconfined),
        verdicts=VerdictCache.in_cache_dir(run.cache_dir, reuse=run.reuse_verdicts),
    )


def open_analysis(run: Run) -> Analysis:
    """The run's static checks (open_checks) and the memo of what it works out once, made once for the command."""
    return Analysis(checks=open_checks(run))
