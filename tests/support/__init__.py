"""What the tests share besides fixtures: the upstream test data's location, git in a test's own repository, what
happens when a tier's engine is missing, and the types of the factory fixtures (the fixtures themselves are in the
conftest.py files)."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

from harness.analysis import dockerfile as dfm

SHARED = Path(__file__).resolve().parents[3] / "shared"
BUNDLE = Path(os.environ.get("MAS_HARNESS_BUNDLE", SHARED / "upstream/mas-dockerfiles.bundle"))
"""The upstream test data beside the checkout (../shared), as it is in CI; MAS_HARNESS_BUNDLE points elsewhere."""

BUILDKIT_LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "buildkit"
"""Lines of BuildKit's plain progress stream, recorded from real builds (their list: test_progress_stream.py)."""
TRACE_RECORDINGS = Path(__file__).resolve().parents[1] / "fixtures" / "trace"
"""The in-build rustc wrapper's records, recorded from traced builds of the stand-in (see its README)."""

DockerfileTexts = Callable[[str], tuple[str, str]]
"""(pristine, patched) Dockerfile text of a tag."""
CheckoutFactory = Callable[[str], Path]
"""A tag of the bundle checked out into the test's own directory."""
MakeRepo = Callable[..., Path]
"""A git repository made by the test, with the given files committed."""


@dataclass(frozen=True, kw_only=True)
class CompatRun:
    """`mas-harness compat` over every pin of the bundle, run once for the session: its exit code and reports."""

    code: int
    document: dict[str, Any]
    junit: bytes


@dataclass(frozen=True)
class Build:
    """One `mas-harness build` run of the integration tier: its exit code, its report.json (empty when it wrote none)
    and its report directory."""

    code: int
    report: dict[str, Any]
    report_dir: Path

    @property
    def final(self) -> dict[str, Any]:
        final = self.report.get("final")
        return final if isinstance(final, dict) else {}

    @property
    def checks(self) -> dict[str, dict[str, Any]]:
        return {check["name"]: check for check in self.report.get("checks", [])}


STANDIN_RELEASE = "v1.19.0"
"""The release whose final image the stand-in compose test runs (the v1.18+ shape)."""
HarnessBuild = Callable[..., Build]
"""`harness_build(ref, *build_args, stage="final", source="standin")`: a build, made once per session."""


def count_parses(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each Dockerfile text is parsed from here on: BuildKit's parser, wrapped for the test."""
    counts: Counter[str] = Counter()
    parse = dfm.parse

    def counted(text: str) -> dfm.Dockerfile:
        counts[text] += 1
        return parse(text)

    monkeypatch.setattr(dfm, "parse", counted)
    return counts


def git(cwd: Path, *args: str) -> str:
    """git in a repository the test owns; its stdout, stripped."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def unavailable(problem: str, *, env: Mapping[str, str] = os.environ) -> NoReturn:
    """A tool a tier needs is missing: under CI (CI=true) the run fails, elsewhere the test is skipped, saying why."""
    if env.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {problem}")
    pytest.skip(problem)
