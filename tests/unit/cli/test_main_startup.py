"""A fast start: `status` loads what it uses and nothing else (read from `python -X importtime`, never timed)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support import CheckoutFactory

# The build stack, and the parts of the harness and its dependencies that `status` has no use for.
NOT_FOR_STATUS = (
    "docker",
    "python_on_whales",
    "testcontainers",
    "psutil",
    "matplotlib",
    "filelock",
    "importlib.metadata",
    "harness.analysis.compat",
    "harness.analysis.static",
    "harness.analysis.semantic",
    "harness.analysis.sandbox",
    "harness.analysis.lint",
    "harness.analysis.verdicts",
    "harness.analysis.submodule_checks",
    "harness.build",
)


def _imported(*argv: str) -> tuple[int, set[str]]:
    """The exit code of `python -X importtime -m harness ARGV` and every module it imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "harness", *argv], capture_output=True, text=True, check=False
    )
    modules = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)$", proc.stderr, re.MULTILINE))
    return proc.returncode, modules


def test_status_imports_neither_the_build_stack_nor_the_static_checks(checkout: CheckoutFactory) -> None:
    code, modules = _imported("status", "--checkout", str(checkout("v1.17.0")))
    assert code == 0
    assert "harness.cli.commands.checkout" in modules and "harness.patch.apply" in modules, "the trace was read"
    loaded = sorted(m for m in modules for unwanted in NOT_FOR_STATUS if m == unwanted or m.startswith(f"{unwanted}."))
    assert loaded == []
