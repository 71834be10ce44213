"""The static checks of a patched Dockerfile: the semantic checks, and the lint comparisons with upstream's."""

from __future__ import annotations

from harness.analysis.findings import Finding
from harness.analysis.lint import check_hadolint_new_findings, check_shellcheck
from harness.analysis.semantic import check_dockerfile
from harness.knobs import Shape


def check_patched(
    patched: str, *, pristine: str | None, name: str = "Dockerfile", shape: Shape | None = None
) -> list[Finding]:
    """The semantic checks, plus the lint comparisons when the upstream original is known."""
    findings = check_dockerfile(patched, name=name, shape=shape)
    if pristine is not None:
        findings += check_shellcheck(pristine, patched) + check_hadolint_new_findings(pristine, patched)
    return findings
