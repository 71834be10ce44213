"""The static checks of a patched Dockerfile: the semantic checks, and the lint comparisons with upstream's."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.analysis.confine import Confinement
from harness.analysis.dockerfile import ParsedOnce
from harness.analysis.findings import Finding
from harness.analysis.lint import check_hadolint_new_findings, check_shellcheck
from harness.analysis.semantic import check_dockerfile
from harness.analysis.verdicts import VerdictCache
from harness.knobs import Shape


@dataclass(frozen=True, kw_only=True)
class StaticChecks:
    """How one run computes the static checks: upstream's build script confined as this machine allows (or as
    `--unconfined` says), and the verdict store their findings are kept in (None: each computed, none kept)."""

    confinement: Confinement
    verdicts: VerdictCache | None = None
    parsed: ParsedOnce = field(default_factory=ParsedOnce)
    """Every Dockerfile the run's checks read, parsed once however many checks and refs read it."""


def not_text(exc: UnicodeDecodeError) -> str:
    """Why a Dockerfile's bytes cannot be checked, in the user's terms."""
    return f"the Dockerfile is not UTF-8 text (byte {exc.start}: {exc.reason}), so it cannot be checked"


def check_patched(
    patched: str,
    *,
    pristine: str | None,
    checks: StaticChecks,
    name: str = "Dockerfile",
    shape: Shape | None = None,
) -> list[Finding]:
    """The semantic checks, plus the lint comparisons when the upstream original is known.

    With a verdict store, findings already computed for the same files (and shape, harness and
    tool versions) are read back instead; a file that does not parse is never stored (its
    error names the file).
    """

    def compute() -> list[Finding]:
        patched_df = checks.parsed(patched, name=name)
        findings = check_dockerfile(patched_df, confinement=checks.confinement, name=name, shape=shape)
        if pristine is not None:
            findings += check_shellcheck(checks.parsed(pristine, name=f"upstream's {name}"), patched_df)
            findings += check_hadolint_new_findings(pristine, patched, outputs=checks.verdicts)
        return findings

    if checks.verdicts is None:
        return compute()
    return checks.verdicts.findings(
        pristine=None if pristine is None else pristine.encode(),
        patched=patched.encode(),
        shape=shape,
        scripts="confined" if checks.confinement.confined else "unconfined",
        compute=compute,
    )
