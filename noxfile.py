"""Sessions: `nox -s verify` is the main job; `nox -s tests` is what CI runs.

Every session installs the project into its own virtualenv and passes
`session.posargs` through to the command it wraps.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
REPORTS = ROOT / "reports"
PYTHON = "3.11"


def _install(session: nox.Session, *extras: str) -> None:
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


def _pytest(session: nox.Session, name: str, *args: str) -> None:
    """Run pytest; exit 5 (no test collected) fails the session like any other non-zero exit."""
    REPORTS.mkdir(exist_ok=True)
    session.run(
        "pytest",
        f"--junitxml={REPORTS / f'{name}.xml'}",
        *args,
        *session.posargs,
        success_codes=[0],
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff and mypy (strict) on the project's own code."""
    _install(session, "test", "lint")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """The unit tier: no network, no Docker; pins, engine, CLI, cache against the bundled upstream data."""
    _install(session, "test")
    _pytest(session, "unit", "tests/unit")


def _upstream_args() -> list[str]:
    upstream = os.environ.get("MAS_UPSTREAM")
    return ["--upstream", upstream] if upstream else []


@nox.session(python=PYTHON)
def static(session: nox.Session) -> None:
    """Semantic and lint checks of the patched Dockerfile of every pin the patch applies to (or the refs given)."""
    _install(session, "test")
    refs = [arg for ref in session.posargs for arg in ("--ref", ref)]
    session.run("python", "-m", "harness", "check", *_upstream_args(), *refs)


@nox.session(python=PYTHON)
def compat(session: nox.Session) -> None:
    """`python -m harness compat` on refs of the configured upstream (default: every pin); `-- --latest` too."""
    _install(session, "test")  # the static checks of each ref need shellcheck and hadolint
    session.run("python", "-m", "harness", "compat", *_upstream_args(), *session.posargs)


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """The integration tier: real buildx builds of the patched builder stage (v1.7.0 bookworm, v1.17.0 trixie)."""
    _install(session, "test")
    _pytest(session, "integration", "tests/integration")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Everything CI runs: the unit tier, the static checks of every applicable pin, the integration tier,
    and the stand-in's knob profiles (table and plot in reports/profile-standin)."""
    _install(session, "test")
    _pytest(session, "tests", "tests")
    session.run("python", "-m", "harness", "check", *_upstream_args())
    session.run(
        "python", "-m", "harness", "profile", "--report-dir", str(REPORTS / "profile-standin"), *_upstream_args()
    )


@nox.session(python=PYTHON)
def profile(session: nox.Session) -> None:
    """Build one pin once per knob profile (default: low-ram, ci, upstream on the stand-in); posargs go to
    `python -m harness profile`, e.g. `nox -s profile -- --source full --profile ci --profile upstream`."""
    _install(session)
    args = session.posargs or ["--report-dir", str(REPORTS / "profile")]
    session.run("python", "-m", "harness", "profile", *_upstream_args(), *args)


@nox.session(python=PYTHON)
def verify(session: nox.Session) -> None:
    """The main job: every tier for the configured pins, then the compatibility table."""
    _install(session, "test")
    REPORTS.mkdir(exist_ok=True)
    # Every part runs even when an earlier one fails, so that the summary covers them all.
    session.run("pytest", f"--junitxml={REPORTS / 'verify.xml'}", "tests", *session.posargs, success_codes=[0, 1])
    for name in ("static", "compat"):
        command = "check" if name == "static" else "compat"
        report = REPORTS / f"{name}.json"
        session.run(
            "python", "-m", "harness", command, "--output", str(report), *_upstream_args(), success_codes=[0, 1]
        )
    session.run("python", "-m", "harness", "summary", "--reports", str(REPORTS))


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks of the harness itself (compat cold/warm, one new ref, unit tier, bytes fetched); no asserts.
    posargs go to benchmarks/bench.py, e.g. `-- --full-clone PATH` for the fetch-bytes comparison."""
    _install(session, "test")
    upstream = os.environ.get("MAS_UPSTREAM")
    if not upstream:
        session.error("set MAS_UPSTREAM to the upstream to benchmark against (e.g. the bundled test data)")
    session.run(
        "python",
        "benchmarks/bench.py",
        "--upstream",
        upstream,
        "--output",
        str(REPORTS / "bench.json"),
        *session.posargs,
    )
