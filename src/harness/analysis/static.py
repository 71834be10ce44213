"""The static checks of a patched Dockerfile: the semantic checks, and the lint comparisons with upstream's."""

from __future__ import annotations

from harness.analysis.findings import Finding
from harness.analysis.lint import check_hadolint_new_findings, check_shellcheck
from harness.analysis.semantic import check_dockerfile
from harness.analysis.verdicts import VerdictCache
from harness.knobs import Shape


def not_text(exc: UnicodeDecodeError) -> str:
    """Why a Dockerfile's bytes cannot be checked, in the user's terms."""
    return f"the Dockerfile is not UTF-8 text (byte {exc.start}: {exc.reason}), so it cannot be checked"


def check_patched(
    patched: str,
    *,
    pristine: str | None,
    name: str = "Dockerfile",
    shape: Shape | None = None,
    verdicts: VerdictCache | None = None,
) -> list[Finding]:
    """The semantic checks, plus the lint comparisons when the upstream original is known.

    With `verdicts`, findings already computed for the same files (and shape, harness and
    tool versions) are read back instead; a file that does not parse is never stored (its
    error names the file).
    """

    def compute() -> list[Finding]:
        findings = check_dockerfile(patched, name=name, shape=shape)
        if pristine is not None:
            findings += check_shellcheck(pristine, patched)
            findings += check_hadolint_new_findings(pristine, patched, outputs=verdicts)
        return findings

    if verdicts is None:
        return compute()
    return verdicts.findings(
        pristine=None if pristine is None else pristine.encode(),
        patched=patched.encode(),
        shape=shape,
        compute=compute,
    )
