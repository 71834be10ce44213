from __future__ import annotations

from pathlib import Path

from harness.analysis.compat import StaticResult, check_refs, resolvable_refs, static_result_of
from harness.analysis.findings import Finding
from harness.analysis.static import check_patched
from harness.cli.commands.run_context import open_analysis, open_checks
from harness.config.requests import CheckRequest
from harness.config.run import Run
from harness.errors import BadInput
from harness.files import read_input
from harness.report.run_frame import checks_frame, latest_frame
from harness.report.views import check_outcome
from harness.results import Outcome
from harness.upstream.cache import open_cache
from harness.upstream.releases import LATEST, latest_tag


def _read_text(path: Path, what: str) -> str:
    data = read_input(path, what)
    if data is None:
        raise BadInput(f"{what} {path} does not exist")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{what} {path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None


def check(run: Run, request: CheckRequest) -> Outcome:
    """An already patched Dockerfile; else the refs named, else every pin expected to apply."""
    if request.dockerfile is not None:
        return _check_dockerfile(run, request.dockerfile, pristine=request.pristine)
    return _check_refs(run, request)


def _check_dockerfile(run: Run, dockerfile: Path, *, pristine: Path | None) -> Outcome:
    """With upstream's original to lint the change against when given."""
    checks = open_checks(run)
    findings = check_patched(
        _read_text(dockerfile, "Dockerfile"),
        pristine=_read_text(pristine, "pristine Dockerfile") if pristine else None,
        checks=checks,
        name=str(dockerfile),
    )
    frame = checks_frame(checks, upstream=None)
    return check_outcome([StaticResult(ref=str(dockerfile), patch="", findings=tuple(findings))], frame=frame)


def _check_refs(run: Run, request: CheckRequest) -> Outcome:
    """Each patched (off the tree) and checked; a ref that does not resolve is reported as one that failed."""
    cache = open_cache(run)
    analysis = open_analysis(run)
    refs = request.refs
    newest = latest_tag(cache, pre=False) if LATEST in refs else None
    chosen = [newest if ref == LATEST and newest else ref for ref in refs]
    chosen = list(dict.fromkeys(chosen)) or [pin.tag for pin in run.pins.pins if pin.expected == "applies"]
    if not chosen:
        raise BadInput(f"nothing to check: {run.pins.source} pins no release expected to apply")
    good, errors = resolvable_refs(cache, chosen)
    results = check_refs(cache, good, pins=run.pins, analysis=analysis, forced_patch=request.forced_patch)
    unchecked = [
        StaticResult(
            ref=error.ref,
            patch="",
            findings=(Finding(check="ref-resolves", ok=False, line=None, message=error.reason, error=True),),
        )
        for error in errors
    ]
    frame = latest_frame(newest, source=cache.source.location).within(
        checks_frame(analysis.checks, upstream=run.pins_upstream(), offline=run.offline)
    )
    return check_outcome([*(static_result_of(result) for result in results), *unchecked], frame=frame)
