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
BUNDLED_UPSTREAM = ROOT.parent / "shared" / "upstream" / "mas-dockerfiles.bundle"
PYTHON = "3.11"


def _install(session: nox.Session, *extras: str) -> None:
    # Never editable: the harness must run from what a wheel carries (its data files included), as users get it.
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install(spec)
    # A reused virtualenv would otherwise keep the harness as it was built last time.
    session.install("--force-reinstall", "--no-deps", ".")


def _pytest(session: nox.Session, name: str, *args: str) -> None:
    """pytest writes reports/NAME.xml; a failing test (1) still gets its summary, any other exit fails here.

    Exit 5 (no test collected) is not a success code, so a run that tested nothing fails the session.
    """
    REPORTS.mkdir(exist_ok=True)
    session.run("pytest", f"--junitxml={REPORTS / f'{name}.xml'}", *args, *session.posargs, success_codes=[0, 1])


# The unit tier waits on git, sh and the linters: one worker per CPU (pytest-xdist). The tiers that build
# images stay on one process: parallel builds on the same engine only slow each other down.
PARALLEL = ("-n", "auto")


def _all_tiers(session: nox.Session, name: str) -> list[str]:
    """The unit tier in parallel, then every other tier; the JUnit files written, for the summary."""
    _pytest(session, f"{name}-unit", "tests/unit", *PARALLEL)
    _pytest(session, name, "tests", "--ignore=tests/unit")
    return ["--pytest", f"{name}-unit.xml", "--pytest", f"{name}.xml"]


def _ci_reports(name: str) -> list[str]:
    """The JSON, JUnit and Markdown a harness command writes for CI (and $GITHUB_STEP_SUMMARY when set)."""
    return [
        "--output",
        str(REPORTS / f"{name}.json"),
        "--junit",
        str(REPORTS / f"{name}.xml"),
        "--markdown",
        str(REPORTS / f"{name}.md"),
    ]


def _summary(session: nox.Session, name: str, *parts: str) -> None:
    """One table of the parts this session ran, as Markdown and JSON too; fails the session if any part failed."""
    session.run(
        "python",
        "-m",
        "harness",
        "summary",
        "--reports",
        str(REPORTS),
        *parts,
        "--markdown",
        str(REPORTS / f"{name}-summary.md"),
        "--output",
        str(REPORTS / f"{name}-summary.json"),
    )


def _harness(session: nox.Session, *args: str) -> None:
    # Exit 1 is a verdict the session's summary reports; 2 and 3 (bad input, missing tool) stop it here.
    session.run("python", "-m", "harness", *args, success_codes=[0, 1])


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff, mypy (strict) and the layering contract (import-linter) on the project's own code."""
    _install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    # On the source tree, not the installed copy: a back-edge added a minute ago must fail here.
    session.run("lint-imports", env={"PYTHONPATH": str(ROOT)})


@nox.session(python=PYTHON)
def unit(session: nox.Session) -> None:
    """The unit tier: no network, no Docker; pins, engine, CLI, cache against the bundled upstream data."""
    _install(session, "test")
    _pytest(session, "unit", "tests/unit", *PARALLEL)
    _summary(session, "unit", "--pytest", "unit.xml")


def _upstream() -> str | None:
    """MAS_UPSTREAM, else the upstream test data beside the clone (where CI has it), else None: the harness's own
    default, upstream on GitHub."""
    if upstream := os.environ.get("MAS_UPSTREAM"):
        return upstream
    return str(BUNDLED_UPSTREAM) if BUNDLED_UPSTREAM.exists() else None


def _upstream_args() -> list[str]:
    upstream = _upstream()
    return ["--upstream", upstream] if upstream else []


@nox.session(python=PYTHON)
def static(session: nox.Session) -> None:
    """Semantic and lint checks of the patched Dockerfile of every pin the patch applies to (or the refs given)."""
    _install(session, "test")
    refs = [arg for ref in session.posargs for arg in ("--ref", ref)]
    _harness(session, "check", *_upstream_args(), *_ci_reports("static"), *refs)
    _summary(session, "static", "--refs", "static.json")


@nox.session(python=PYTHON)
def compat(session: nox.Session) -> None:
    """`python -m harness compat` on refs of the configured upstream (default: every pin); `-- --latest` too."""
    _install(session, "test")  # the static checks of each ref need shellcheck and hadolint
    _harness(session, "compat", *_upstream_args(), *_ci_reports("compat"), *session.posargs)
    _summary(session, "compat", "--refs", "compat.json")


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """The integration tier: real buildx builds of the patched builder stage, one pin per patch variant."""
    _install(session, "test")
    _pytest(session, "integration", "tests/integration")
    _summary(session, "integration", "--pytest", "integration.xml")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Everything CI runs: the unit and integration tiers, the static checks of every pin, and the stand-in's
    knob profiles (table and plot in reports/profile-standin)."""
    _install(session, "test")
    parts = _all_tiers(session, "tests")
    _harness(session, "check", *_upstream_args(), *_ci_reports("static"))
    _harness(session, "profile", "--report-dir", str(REPORTS / "profile-standin"), *_upstream_args())
    _summary(session, "tests", *parts, "--refs", "static.json", "--profile", "profile-standin/profile.json")


@nox.session(python=PYTHON)
def profile(session: nox.Session) -> None:
    """Build one pin once per knob profile (default: low-ram, ci, upstream on the stand-in); posargs go to
    `python -m harness profile`, e.g. `nox -s profile -- --source full --profile ci --profile upstream`."""
    _install(session)
    args = session.posargs or ["--report-dir", str(REPORTS / "profile")]
    session.run("python", "-m", "harness", "profile", *_upstream_args(), *args)


@nox.session(python=PYTHON)
def verify(session: nox.Session) -> None:
    """The main job: every tier, the static checks and compat over every pin, then one summary table."""
    _install(session, "test")
    # Every part runs even when an earlier one fails, so that the summary covers them all. `check` stores the
    # static verdicts in the harness's cache; `compat` reads them back rather than computing them again.
    parts = _all_tiers(session, "verify")
    _harness(session, "check", *_upstream_args(), *_ci_reports("static"))
    _harness(session, "compat", *_upstream_args(), *_ci_reports("compat"))
    _summary(session, "verify", *parts, "--refs", "static.json", "--refs", "compat.json")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks of the harness itself (compat cold/warm over the pins and over 300 generated refs, check then
    compat, status, the unit tier, bytes fetched) into docs/bench/bench.json and .md; no asserts. posargs go to
    benchmarks/bench.py, e.g. `-- --busy`, `-- --old-python PATH` or `-- --full-clone PATH`."""
    _install(session, "test")
    upstream = _upstream()
    if upstream is None or (not Path(upstream).exists() and "://" not in upstream):
        session.error(f"no upstream to benchmark against at {upstream or BUNDLED_UPSTREAM}: set MAS_UPSTREAM")
    session.run("python", "benchmarks/bench.py", "--upstream", upstream, *session.posargs)
