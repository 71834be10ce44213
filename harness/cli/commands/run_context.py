"""What compat, check and verify share: the verdict store of a run, how it runs upstream's scripts, and what the
run says of them."""

from __future__ import annotations

from dataclasses import replace

from harness.analysis.confine import Confinement, detect
from harness.analysis.patched import Analysis
from harness.analysis.static import StaticChecks
from harness.analysis.verdicts import VerdictCache
from harness.config.run import Run
from harness.results import Outcome


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


def confinement_notes(confinement: Confinement) -> tuple[str, ...]:
    if confinement.confined:
        return ()
    return (f"upstream's build script: {confinement.describe()}",)


def offline_note(upstream: str) -> str:
    return (
        f"offline: refs were answered from the cache alone, without asking {upstream} where they point now; "
        "a branch or tag moved since it was cached is not seen (run without --offline to look)"
    )


def with_run_facts(outcome: Outcome, *, checks: StaticChecks, upstream: str | None, offline: bool = False) -> Outcome:
    """`verdicts` and `scripts` in the JSON (and `offline` when an upstream was asked), with notes when the upstream
    was not asked or the build script was not confined."""
    notes = (*outcome.notes, offline_note(upstream)) if offline and upstream else outcome.notes
    notes = (*notes, *confinement_notes(checks.confinement))
    data: dict[str, object] = {**outcome.data}
    if upstream is not None:
        data["offline"] = offline
    if checks.verdicts is not None:
        data["verdicts"] = checks.verdicts.as_json()
    data["scripts"] = scripts_json(checks.confinement)
    return replace(outcome, notes=notes, data=data)


def scripts_json(confinement: Confinement) -> dict[str, object]:
    """How upstream's build script ran, for the JSON: `confined` with what, `unconfined`, or `not-run` and why."""
    if confinement.backend is None:
        return {"mode": "not-run", "reason": confinement.unavailable}
    return {"mode": "confined" if confinement.confined else "unconfined", "backend": str(confinement.backend)}
