"""The users' whole workflow, as they get it: a wheel installed non-editable, run in their own repository.

The wheel and the sdist are built from this checkout; the wheel is installed into a fresh
virtualenv; a superproject is generated outside the checkout with MAS as a real git
submodule (a clone of the bundled upstream test data), the users' patch beside it, their
build.sh and a [tool.mas-harness] table. Everything then goes through the installed
`mas-harness` console script, the pre-commit hook (`pre-commit try-repo`) and the GitHub
Action's script, never through this source tree. No network beyond the package registries.
A contributor's editable install (`pip install -e .`) is checked against the wheel too: it must
find the same shipped data and run a command on it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import venv
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from tests.support.traces import GB, synthetic_trace, synthetic_unit, write_synthetic_trace

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "docs" / "workflows"
"""The workflows the README offers users to copy: their steps run here as GitHub runs them."""
SUBMODULE = "docker/chat/mas/repo"
PATCH = "docker/chat/mas/patches/patch-dockerfile.patch"
RECORDED = "v1.17.0"
CONFIG = (
    f'[project]\nname = "chat"\nversion = "0"\n\n[tool.mas-harness]\nsubmodule = "{SUBMODULE}"\npatch = "{PATCH}"\n'
)
# The users' build.sh, as their README describes it: the snippet, then the knobs as build args.
BUILD_SH = """#!/usr/bin/env bash
set -euo pipefail
MAS_REPO="docker/chat/mas/repo"
MAS_PATCH="$(realpath docker/chat/mas/patches/patch-dockerfile.patch)"
if git -C "$MAS_REPO" apply --reverse --check "$MAS_PATCH" >/dev/null 2>&1; then
  echo "MAS Dockerfile patch already applied"
else
  git -C "$MAS_REPO" apply "$MAS_PATCH"
fi
docker build "$MAS_REPO" --build-arg CARGO_BUILD_JOBS=4 --build-arg MAS_BUILD_TARGETS=x86_64-unknown-linux-gnu
"""


def _run(argv: list[str], *, cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)


def _git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    proc = _run(["git", *args], cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The wheel and sdist of this checkout, built as a release would build them."""
    out = tmp_path_factory.mktemp("dist")
    proc = _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(out), str(REPO)], cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return Dist(wheel=wheel, sdist=sdist)


@pytest.fixture(scope="session")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed non-editable; returns its bin directory."""
    env_dir = tmp_path_factory.mktemp("users-venv")
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    proc = _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(dist.wheel)], cwd=env_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return bin_dir


@pytest.fixture
def user_env(installed: Path, tmp_path: Path) -> dict[str, str]:
    """The environment of a user's shell: the venv first on PATH, their own cache, nothing of this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAS_", "PYTHON", "GIT_", "GITHUB_"))}
    env["PATH"] = f"{installed}{os.pathsep}{env.get('PATH', '')}"
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    for key, value in (("user.email", "user@example.org"), ("user.name", "A User"), ("protocol.file.allow", "always")):
        _run(["git", "config", "--global", key, value], cwd=tmp_path, env=env)
    return env


@pytest.fixture
def superproject(bundle: Path, tmp_path: Path, user_env: dict[str, str]) -> Iterator[Path]:
    """The users' repository, outside this checkout: MAS as a submodule at RECORDED, their patch and build.sh."""
    upstream = tmp_path / "upstream" / "matrix-authentication-service"
    assert _run(["git", "clone", "--quiet", str(bundle), str(upstream)], cwd=tmp_path, env=user_env).returncode == 0
    root = tmp_path / "chat"
    root.mkdir()
    assert not root.is_relative_to(REPO)
    _run(["git", "init", "--quiet"], cwd=root, env=user_env)
    added = _run(["git", "submodule", "add", "--quiet", str(upstream), SUBMODULE], cwd=root, env=user_env)
    assert added.returncode == 0, added.stderr
    _run(["git", "checkout", "--quiet", RECORDED], cwd=root / SUBMODULE, env=user_env)
    (root / PATCH).parent.mkdir(parents=True)
    shutil.copyfile(REPO / "patches" / "patch-dockerfile.patch", root / PATCH)
    (root / "docker/chat/mas/build.sh").write_text(BUILD_SH)
    (root / "pyproject.toml").write_text(CONFIG)
    _run(["git", "add", "-A"], cwd=root, env=user_env)
    committed = _run(["git", "commit", "--quiet", "-m", f"MAS at {RECORDED} with our patch"], cwd=root, env=user_env)
    assert committed.returncode == 0, committed.stderr
    yield root


# The names of the shipped data files an installed harness finds, read the way the harness reads them.
LIST_RESOURCES = """
import os
from harness import resources
root = resources.data_dir()
for top, dirs, names in os.walk(root, followlinks=True):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    for name in names:
        print(os.path.relpath(os.path.join(top, name), root))
"""


def _resource_names(bin_dir: Path, cwd: Path) -> set[str]:
    proc = _run([str(bin_dir / "python"), "-c", LIST_RESOURCES], cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return set(proc.stdout.splitlines())


@pytest.fixture(scope="session")
def editable(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with this checkout installed editable, as a contributor installs it; its bin directory."""
    env_dir = tmp_path_factory.mktemp("contributors-venv")
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir / "bin"
    proc = _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--editable", str(REPO)], cwd=env_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return bin_dir


def test_an_editable_install_finds_the_wheels_data_and_runs_compat(
    editable: Path, installed: Path, bundle: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    from_source = _resource_names(editable, tmp_path)
    assert {"pins.toml", "patches/series.toml", "standin/Cargo.toml", "install-docker-engine.sh"} <= from_source
    assert from_source == _resource_names(installed, tmp_path)
    env = {**user_env, "PATH": f"{editable}{os.pathsep}{user_env['PATH']}"}
    compat = _run(["mas-harness", "compat", "--upstream", str(bundle), RECORDED], cwd=tmp_path, env=env)
    assert compat.returncode == 0, compat.stdout[-2000:] + compat.stderr[-2000:]


def _harness(root: Path, env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _run(["mas-harness", *args], cwd=root, env=env)


def test_the_wheel_and_the_sdist_carry_the_data(dist: Dist, tmp_path: Path) -> None:
    names = set(zipfile.ZipFile(dist.wheel).namelist())
    data = "harness/resources/"
    expected = {
        f"{data}pins.toml",
        f"{data}patches/series.toml",
        f"{data}install-docker-engine.sh",
        f"{data}standin/Cargo.toml",
        f"{data}standin/Cargo.lock",
        f"{data}standin/crates/cli/src/main.rs",
        f"{data}standin/crates/cli/build.rs",
        f"{data}standin/crates/json/src/lib.rs",
        f"{data}standin/templates/STANDIN.txt",
        f"{data}standin-stages/frontend/share/manifest.json",
        f"{data}standin-stages/policy/app/policies/policy.wasm",
        f"{data}traces/README.md",
    }
    expected |= {f"{data}patches/{p.name}" for p in (REPO / "patches").glob("*.patch")}
    assert len([n for n in expected if n.endswith(".patch")]) == 3, "every variant"
    assert expected <= names, sorted(expected - names)
    assert "harness/py.typed" in names
    assert "harness/build/tracer/context/rustc_wrapper.c" in names, "the in-build trace's rustc wrapper"
    # A wheel built from the sdist (what `pip install` of the sdist does) carries the same data.
    rebuilt = tmp_path / "from-sdist"
    proc = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(rebuilt), str(dist.sdist)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [wheel] = rebuilt.glob("*.whl")
    assert expected <= set(zipfile.ZipFile(wheel).namelist())
    # The sdist carries the tests, and the example workflows they run.
    with tarfile.open(dist.sdist) as sdist:
        shipped = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    assert {f"docs/workflows/{p.name}" for p in WORKFLOWS.glob("*.yml")} <= shipped


def test_version_and_help_speak_to_users(superproject: Path, user_env: dict[str, str]) -> None:
    version = _harness(superproject, user_env, "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("mas-harness 0.")
    for args in (["--help"], ["verify", "--help"], ["compat", "--help"]):
        shown = _harness(superproject, user_env, *args)
        assert shown.returncode == 0
        assert "nox" not in shown.stdout and "lower layer" not in shown.stdout


def test_verify_writes_junit_markdown_and_json(superproject: Path, user_env: dict[str, str], tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    args = ["--junit", str(reports / "v.xml"), "--markdown", str(reports / "v.md"), "--output", str(reports / "v.json")]
    proc = _harness(superproject, user_env, "verify", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cases = ElementTree.parse(reports / "v.xml").getroot().findall("./testsuite/testcase")
    assert len(cases) > 10
    assert (reports / "v.md").read_text().startswith(f"### verify {SUBMODULE} at {RECORDED}: all ok")
    document = json.loads((reports / "v.json").read_text())
    assert (document["schema_version"], document["command"], document["mode"]) == (1, "verify", "superproject")
    assert document["refs"][0]["state"] == "applies"
    assert document["refs"][0]["upstream_release_profile"]["lto"]["value"] == "true"


def test_status_apply_twice_the_users_snippet_and_revert(superproject: Path, user_env: dict[str, str]) -> None:
    dockerfile = superproject / SUBMODULE / "Dockerfile"
    pristine = dockerfile.read_bytes()
    status = _harness(superproject, user_env, "status")
    assert status.returncode == 0 and "state: applies" in status.stdout
    first = _harness(superproject, user_env, "apply")
    assert first.returncode == 0, first.stdout + first.stderr
    assert dockerfile.read_bytes() != pristine
    second = _harness(superproject, user_env, "apply", "--json")
    assert second.returncode == 0
    assert json.loads(second.stdout)["action"] == "no-op"
    # The users' own reverse-check agrees that the patch is applied.
    reverse = _run(
        ["git", "-C", SUBMODULE, "apply", "--reverse", "--check", str(superproject / PATCH)], cwd=superproject
    )
    assert reverse.returncode == 0, reverse.stderr
    reverted = _harness(superproject, user_env, "revert")
    assert reverted.returncode == 0
    assert dockerfile.read_bytes() == pristine


def test_a_bump_that_fits_and_one_that_names_the_variant_to_take(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    before = _git(superproject, "status", "--porcelain")
    fits = _harness(superproject, user_env, "compat", "--bump-to", "v1.16.0")
    assert fits.returncode == 0, fits.stdout + fits.stderr
    bump = _harness(superproject, user_env, "compat", "--bump-to", "v1.19.0")
    assert bump.returncode == 1, bump.stdout + bump.stderr
    assert "the harness's v1.18+ variant for v1.19.0" in bump.stdout
    assert "applies and passes the static checks" in bump.stdout
    assert f"mas-harness patch --for v1.19.0 --output {PATCH} --force" in bump.stdout
    assert _git(superproject, "status", "--porcelain") == before, "a bump check writes nothing of the user's"

    exported = tmp_path / "v1.18.patch"
    taken = _harness(superproject, user_env, "patch", "--for", "v1.19.0", "--output", str(exported))
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert exported.read_bytes() == (REPO / "patches" / "patch-dockerfile-v1.18.patch").read_bytes()
    again = _harness(superproject, user_env, "patch", "--for", "v1.19.0", "--output", str(exported))
    assert again.returncode == 2 and again.stderr.startswith("mas-harness: error: ") and "--force" in again.stderr


def test_refresh_in_the_superproject_takes_the_configured_patch(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    output = tmp_path / "refreshed.patch"
    proc = _harness(superproject, user_env, "refresh", "--ref", "v1.16.0", "--output", str(output), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["refresh_status"] == "clean"
    assert b"Last-Update: " in output.read_bytes()


def test_the_pre_commit_hook_passes_and_fails_with_the_patch(superproject: Path, user_env: dict[str, str]) -> None:
    pre_commit = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "mas-patch-verify", "--all-files"]
    env = {**user_env, "PRE_COMMIT_HOME": str(superproject.parent / "pre-commit-home")}
    passed = _run(pre_commit, cwd=superproject, env=env)
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-3000:]
    assert "Passed" in passed.stdout
    broken = (superproject / PATCH).read_text().replace("ARG CARGO_BUILD_JOBS=2", "ARG CARGO_BUILD_JOBS=64")
    (superproject / PATCH).write_text(broken)
    failed = _run(pre_commit, cwd=superproject, env=env)
    assert failed.returncode == 1, failed.stdout[-3000:]
    assert "knobs-declared" in failed.stdout


BOT_BRANCH = f"dependabot/submodules/{SUBMODULE}-7b6c5af"


def _job_env(user_env: Mapping[str, str], workspace: Path, tmp_path: Path) -> dict[str, str]:
    """What GitHub gives every step of a job: the checkout as the workspace, the runner's temporary directory."""
    temp = tmp_path / "runner-temp"
    temp.mkdir(parents=True, exist_ok=True)
    return {
        **user_env,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "RUNNER_TEMP": str(temp),
    }


def _step_env(job: Mapping[str, str], tmp_path: Path, step: str) -> dict[str, str]:
    """What GitHub gives one step besides: its own (empty) output, environment and job summary files."""
    files = tmp_path / "steps" / step
    files.mkdir(parents=True)
    env = {"GITHUB_OUTPUT": files / "output", "GITHUB_ENV": files / "env", "GITHUB_STEP_SUMMARY": files / "summary.md"}
    for path in env.values():
        path.touch()
    return {**job, **{name: str(path) for name, path in env.items()}}


def _step_outputs(env: Mapping[str, str]) -> dict[str, str]:
    """The step's outputs as GitHub reads $GITHUB_OUTPUT: `name=value` lines and `name<<DELIMITER` blocks."""
    outputs: dict[str, str] = {}
    lines = iter(Path(env["GITHUB_OUTPUT"]).read_text().splitlines())
    for line in lines:
        name, equals, value = line.partition("=")
        if "<<" in name or not equals:
            name, _, delimiter = line.partition("<<")
            block = []
            for inner in lines:
                if inner == delimiter:
                    break
                block.append(inner)
            else:
                pytest.fail(f"{name}: no closing {delimiter} in $GITHUB_OUTPUT")
            value = "\n".join(block)
        outputs[name] = value
    return outputs


def _action(env: Mapping[str, str], cwd: Path, **inputs: str) -> subprocess.CompletedProcess[str]:
    """The action's step: its script, with the inputs as action.yml passes them (MAS_HARNESS_*)."""
    action = {"GITHUB_ACTION_PATH": str(REPO), "MAS_HARNESS_REPORTS": "reports"}
    action |= {f"MAS_HARNESS_{name.upper()}": value for name, value in inputs.items()}
    return _run(["bash", str(REPO / "scripts" / "github-action.sh")], cwd=cwd, env={**env, **action})


def test_the_github_action_script_reports_and_annotates(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    job = _job_env(user_env, superproject, tmp_path)
    verify = _step_env(job, tmp_path, "verify")
    ok = _action(verify, superproject)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert (superproject / "reports" / "mas-harness.xml").is_file()
    assert json.loads((superproject / "reports" / "mas-harness.json").read_text())["ok"] is True
    assert _step_outputs(verify) == {"exit-code": "0", "ref": RECORDED, "fits": "true"}
    summary = Path(verify["GITHUB_STEP_SUMMARY"]).read_text()
    assert summary.startswith(f"### verify {SUBMODULE} at {RECORDED}: all ok")

    # The old patch against a v1.18+ release: its second hunk is annotated on its @@ line in the patch.
    compat = _step_env(job, tmp_path, "compat")
    bump = _action(compat, superproject, bump_to="v1.19.0")
    assert bump.returncode == 1
    hunk_line = next(
        number
        for number, line in enumerate((superproject / PATCH).read_text().splitlines(), start=1)
        if line.startswith("@@ -119,")
    )
    assert f"::error file={PATCH},line={hunk_line}," in bump.stdout
    assert _step_outputs(compat) == {"exit-code": "1", "ref": "v1.19.0", "fits": "false"}


def test_the_github_action_names_the_tag_latest_stood_for_and_says_nothing_of_bad_input(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    job = _job_env(user_env, superproject, tmp_path)
    latest = _step_env(job, tmp_path, "latest")
    checked = _action(latest, superproject, bump_to="latest")
    assert checked.returncode == 1, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert "latest is v1.19.0" in checked.stdout
    assert _step_outputs(latest) == {"exit-code": "1", "ref": "v1.19.0", "fits": "false"}
    assert json.loads((superproject / "reports" / "mas-harness.json").read_text())["latest"] == "v1.19.0"

    # Bad input checks nothing: no verdict, no ref, and the report of the step before is not taken for this one's.
    unknown = _step_env(job, tmp_path, "unknown")
    refused = _action(unknown, superproject, bump_to="v9.9.9")
    assert refused.returncode == 2
    assert refused.stderr.startswith("mas-harness: error: ")
    assert _step_outputs(unknown) == {"exit-code": "2", "ref": "", "fits": ""}
    assert not (superproject / "reports" / "mas-harness.json").exists()


def test_the_github_action_at_the_newest_release_already_says_whether_the_patch_fits_it(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    """Nothing to bump is exit 0; `fits` still answers for the patch, here the old one at a v1.18+ release."""
    _git(superproject / SUBMODULE, "checkout", "--quiet", "v1.19.0")
    _git(superproject, "commit", "--quiet", "-am", "MAS at v1.19.0, the patch not fitted", env=user_env)
    job = _job_env(user_env, superproject, tmp_path)
    old_patch = _step_env(job, tmp_path, "old-patch")
    run = _action(old_patch, superproject, bump_to="latest")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "up to date at v1.19.0" in run.stdout
    assert _step_outputs(old_patch) == {"exit-code": "0", "ref": "v1.19.0", "fits": "false"}

    shutil.copyfile(REPO / "patches" / "patch-dockerfile-v1.18.patch", superproject / PATCH)
    _git(superproject, "commit", "--quiet", "-am", "The patch fitted", env=user_env)
    fitted = _step_env(job, tmp_path, "fitted")
    assert _action(fitted, superproject, bump_to="latest").returncode == 0
    assert _step_outputs(fitted) == {"exit-code": "0", "ref": "v1.19.0", "fits": "true"}


def _workflow(name: str) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(document, dict)
    # YAML 1.1, which PyYAML reads, takes the key `on` for true.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _steps(workflow: Mapping[str, Any]) -> list[dict[str, Any]]:
    [job] = workflow["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def _run_step(step: Mapping[str, Any], *, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """A `run` step as GitHub runs it (`shell: bash`: bash --noprofile --norc -eo pipefail {0}). Its script has no
    ${{ }} expression, so what runs here is what runs there."""
    script: str = step["run"]
    assert "${{" not in script, step["name"]
    path = Path(env["GITHUB_OUTPUT"]).with_name("script.sh")
    path.write_text(script)
    return _run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(path)], cwd=cwd, env=env)


def _expand(text: str, *, outputs: Mapping[str, Mapping[str, str]], env: Mapping[str, str]) -> str:
    """The expressions the example workflows pass to other actions: a step's outputs and runner.temp."""

    def value(match: re.Match[str]) -> str:
        expression = match.group(1)
        if expression == "runner.temp":
            return env["RUNNER_TEMP"]
        step = re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression)
        assert step is not None, expression
        return outputs.get(step.group(1), {}).get(step.group(2), "")

    return re.sub(r"\$\{\{\s*(.*?)\s*\}\}", value, text)


def _run_steps(
    steps: Sequence[Mapping[str, Any]], *, cwd: Path, job: Mapping[str, str], tmp_path: Path
) -> dict[str, dict[str, str]]:
    """Every `run` step of a workflow's job but the install (the harness is the wheel installed here), in order,
    each passing, with the files GitHub gives a step; their outputs by step id."""
    ran = [s for s in steps if "run" in s and not s["run"].startswith("python -m pip install mas-patch-harness")]
    assert [s["name"] for s in steps if "run" in s and s not in ran] == ["Install mas-harness"]
    outputs: dict[str, dict[str, str]] = {}
    for index, step in enumerate(ran):
        script = Path(_step_env(job, tmp_path, f"shellcheck-{index}")["GITHUB_OUTPUT"]).with_name("script.sh")
        script.write_text(step["run"])
        linted = _run(["shellcheck", "--shell=bash", str(script)], cwd=cwd, env=job)
        assert linted.returncode == 0, f"{step['name']}: {linted.stdout}"
        env = _step_env(job, tmp_path, f"step-{index}")
        done = _run_step(step, cwd=cwd, env=env)
        assert done.returncode == 0, f"{step['name']}: " + done.stdout[-3000:] + done.stderr[-3000:]
        outputs[step.get("id", f"step-{index}")] = _step_outputs(env)
    return outputs


def test_the_bump_latest_workflow_stages_the_bump_and_gives_the_pull_request_its_message(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    workflow = _workflow("bump-latest.yml")
    assert "schedule" in workflow["on"]
    steps = _steps(workflow)
    assert "mas-harness bump latest --message-file" in next(s["run"] for s in steps if s.get("id") == "bump")
    [pull_request] = [s for s in steps if str(s.get("uses", "")).startswith("peter-evans/create-pull-request@")]
    job = _job_env(user_env, superproject, tmp_path)
    outputs = _run_steps(steps, cwd=superproject, job=job, tmp_path=tmp_path)

    message_file = Path(job["RUNNER_TEMP"]) / "mas-harness-bump.txt"
    message = message_file.read_text()
    assert message.startswith(f"Bump {SUBMODULE} from {RECORDED} to v1.19.0\n")
    # The tree holds the bump, staged, and nothing else: the message is outside it.
    assert _git(superproject, "status", "--porcelain", "--untracked-files=all") == f"M  {PATCH}\nM  {SUBMODULE}"
    release = _git(superproject / SUBMODULE, "rev-parse", "v1.19.0^{commit}")
    assert _git(superproject, "rev-parse", f":{SUBMODULE}") == release
    assert _git(superproject, "show", f":{PATCH}") == (
        REPO / "patches" / "patch-dockerfile-v1.18.patch"
    ).read_text().rstrip("\n")

    # The pull request: opened (its `if` holds), titled, described and committed with the harness's message.
    condition = re.fullmatch(r"steps\.(\w+)\.outputs\.(\w+) != ''", pull_request["if"])
    assert condition is not None
    assert outputs[condition.group(1)][condition.group(2)] != ""
    given = {key: _expand(str(value), outputs=outputs, env=job) for key, value in pull_request["with"].items()}
    assert given["title"] == message.splitlines()[0]
    assert given["commit-message"] == message.rstrip("\n")
    assert Path(given["body-path"]).read_text() == message

    # Merged, and upstream has no newer release: the next week's run changes nothing and opens no pull request.
    _git(superproject, "commit", "--quiet", "-m", given["commit-message"], env=user_env)
    next_week = tmp_path / "next-week"
    job = _job_env(user_env, superproject, next_week)
    outputs = _run_steps(steps, cwd=superproject, job=job, tmp_path=next_week)
    assert outputs[condition.group(1)].get(condition.group(2), "") == "", "the pull request step is skipped"
    assert not (Path(job["RUNNER_TEMP"]) / "mas-harness-bump.txt").exists()
    assert _git(superproject, "status", "--porcelain", "--untracked-files=all") == ""


def test_the_bot_pull_request_workflow_commits_the_fitted_patch_onto_the_bots_branch(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    workflow = _workflow("fit-bot-submodule-pr.yml")
    assert SUBMODULE in workflow["on"]["pull_request"]["paths"]
    [job_spec] = workflow["jobs"].values()
    assert "dependabot[bot]" in job_spec["if"] and "renovate[bot]" in job_spec["if"]
    steps = _steps(workflow)
    assert next(s for s in steps if str(s.get("uses", "")).startswith("actions/checkout@"))["with"]["ref"] == (
        "${{ github.head_ref }}"
    )
    # The bot's pull request: its branch on the remote, the gitlink moved and committed as Dependabot does.
    origin = tmp_path / "origin.git"
    _git(tmp_path, "init", "--quiet", "--bare", str(origin))
    _git(superproject, "remote", "add", "origin", str(origin))
    _git(superproject, "checkout", "--quiet", "-b", BOT_BRANCH)
    before = _git(superproject / SUBMODULE, "rev-parse", "--short=7", "HEAD")
    _git(superproject / SUBMODULE, "checkout", "--quiet", "v1.19.0")
    after = _git(superproject / SUBMODULE, "rev-parse", "--short=7", "HEAD")
    _git(superproject, "add", SUBMODULE)
    _git(superproject, "commit", "--quiet", "-m", f"Bump {SUBMODULE} from `{before}` to `{after}`", env=user_env)
    bots = _git(superproject, "rev-parse", "HEAD")
    _git(superproject, "push", "--quiet", "origin", BOT_BRANCH)

    assert any(s.get("run") == "mas-harness bump --commit" for s in steps)
    pull_request = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_HEAD_REF": BOT_BRANCH}
    job = {**_job_env(user_env, superproject, tmp_path), **pull_request}
    _run_steps(steps, cwd=superproject, job=job, tmp_path=tmp_path)

    fitted = _git(superproject, "rev-parse", "HEAD")
    assert _git(superproject, "rev-parse", "HEAD^") == bots
    assert _git(superproject, "show", "--name-only", "--format=", "HEAD").splitlines() == [PATCH]
    message = _git(superproject, "log", "-1", "--format=%B")
    assert message.startswith(f"Fit {PATCH} to {SUBMODULE} at v1.19.0 (bumped from {RECORDED})\n")
    assert _git(superproject, "log", "-1", "--format=%an") == "github-actions[bot]"
    assert _git(origin, "rev-parse", f"refs/heads/{BOT_BRANCH}") == fitted, "pushed onto the bot's branch"
    assert _git(superproject, "status", "--porcelain", "--untracked-files=all") == ""
    assert _harness(superproject, user_env, "verify").returncode == 0

    # Run again (a re-run, a push of ours): the patch fits already, nothing is committed or pushed.
    again = tmp_path / "again"
    _run_steps(steps, cwd=superproject, job={**_job_env(user_env, superproject, again), **pull_request}, tmp_path=again)
    assert _git(superproject, "rev-parse", "HEAD") == fitted
    assert _git(origin, "rev-parse", f"refs/heads/{BOT_BRANCH}") == fitted


def test_the_github_action_builds_on_the_builder_its_input_names(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    """The `build` and `builder` inputs reach `mas-harness build --builder`: a builder buildx does not know is one line
    and exit 2, before anything is built, and the check's own reports are still written."""
    step = _step_env(_job_env(user_env, superproject, tmp_path), tmp_path, "build")
    run = _action(step, superproject, build="v1.19.0", builder="no-such-builder")
    assert run.returncode == 2, run.stdout[-3000:] + run.stderr[-3000:]
    assert "mas-harness: error: --builder no-such-builder: buildx knows no such builder" in run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads((superproject / "reports" / "mas-harness.json").read_text())["ok"] is True
    assert not (superproject / "reports" / "build").exists(), "nothing built, nothing written"
    # The check ran and passed: its verdict stands beside the build's exit code.
    assert _step_outputs(step) == {"exit-code": "2", "ref": RECORDED, "fits": "true"}


def test_install_engine_ships_the_installer(superproject: Path, user_env: dict[str, str]) -> None:
    shown = _harness(superproject, user_env, "install-engine", "--print")
    assert shown.returncode == 0
    assert shown.stdout == (REPO / "harness" / "resources" / "install-docker-engine.sh").read_text()


def test_bad_input_is_one_line_and_exit_2(superproject: Path, user_env: dict[str, str], tmp_path: Path) -> None:
    unknown = _harness(superproject, user_env, "compat", "--bump-to", "v9.9.9")
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1 and unknown.stderr.startswith("mas-harness: error: ")
    unwritable = _harness(superproject, user_env, "verify", "--junit", str(tmp_path / "no" / "such" / "dir.xml"))
    assert unwritable.returncode == 2 and "is not a directory" in unwritable.stderr


def test_without_the_build_extra_a_dry_run_plans_and_a_build_says_what_to_install(
    superproject: Path, user_env: dict[str, str], bundle: Path
) -> None:
    """The users' venv has the wheel alone: planning needs no Docker stack, building names the extra."""
    where = ["--upstream", str(bundle), "--ref", "v1.19.0"]
    dry = _harness(superproject, user_env, "profile", "--dry-run", *where, "--json")
    assert dry.returncode == 0, dry.stderr
    assert [p["name"] for p in json.loads(dry.stdout)["profiles"]] == ["low-ram", "ci", "upstream"]
    build = _harness(superproject, user_env, "build", *where)
    assert build.returncode == 3
    assert build.stderr.count("\n") == 1
    assert "pip install 'mas-patch-harness[build]'" in build.stderr


def test_without_the_build_extra_advise_recommends_from_a_trace(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    """The users' venv has the wheel alone, and no engine is needed: advise predicts from a trace."""
    units = [
        synthetic_unit("core-1", start=0, end=60, metadata_ready=20, peak_rss_bytes=GB),
        synthetic_unit("mas_cli-1", kind="bin", start=60, end=300, deps=["core-1"], peak_rss_bytes=3 * GB),
    ]
    trace = write_synthetic_trace(tmp_path / "trace.json", synthetic_trace(units))
    fits = _harness(superproject, user_env, "advise", "--memory", "4G", "--cpus", "2", "--trace", str(trace))
    assert fits.returncode == 0, fits.stderr
    assert "docker buildx build --build-arg CARGO_BUILD_JOBS=" in fits.stdout
    nothing = _harness(superproject, user_env, "advise", "--memory", "2G", "--cpus", "2", "--trace", str(trace))
    assert nothing.returncode == 1
    assert "nothing fits" in " ".join(nothing.stdout.split())
    plot = _harness(superproject, user_env, "advise", "--memory", "4G", "--trace", str(trace), "--plot", "p.png")
    assert plot.returncode == 3 and "pip install 'mas-patch-harness[build]'" in plot.stderr


def test_without_the_build_extra_advise_recommends_from_the_traces_the_wheel_ships(
    superproject: Path, user_env: dict[str, str]
) -> None:
    """The measured full-source traces of v1.17.0 and v1.19.0 travel in the wheel: no --trace, no engine, no build
    extra."""
    advice = _harness(superproject, user_env, "advise", "--ref", "v1.19.0", "--memory", "4G", "--cpus", "2", "--json")
    assert advice.returncode == 0, advice.stderr
    report = json.loads(advice.stdout)
    assert report["ref"] == "v1.19.0"
    recommended = report["recommended"]
    assert recommended is not None
    assert recommended["predicted_peak_bytes"] <= report["usable_bytes"]
    text = _harness(superproject, user_env, "advise", "--ref", "v1.19.0", "--memory", "4G", "--cpus", "2")
    assert "recommended: fastest that fits" in text.stdout
    assert "docker buildx build --build-arg CARGO_BUILD_JOBS=" in text.stdout
    assert "unit costs from a full trace of v1.19.0" in " ".join(text.stdout.split())
    older = _harness(superproject, user_env, "advise", "--ref", "v1.17.0", "--memory", "4G", "--cpus", "2")
    assert older.returncode == 0, older.stderr
    said = " ".join(older.stdout.split())
    assert "unit costs from a full trace of v1.17.0" in said
    assert "extra codegen threads from v1.19.0" in said, "v1.17.0 has no pair of its own: it borrows v1.19.0's"


HOSTILE_AFTER = "#######################################\nFROM --platform=${BUILDPLATFORM} scratch AS share\n"
"""The end of v1.19.0's builder stage, past every hunk of the v1.18+ variant: a RUN added there still lets it apply."""


def test_a_hostile_upstream_tag_changes_nothing_outside_and_ends_at_the_limit(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    # A tag (a release, a pull request's head) whose builder stage gains a RUN that moves nothing but names
    # /usr/local/bin/, so the static checks execute it: it writes outside, reads a secret, calls the network and
    # sleeps far past the limit in one scenario. `compat --bump-to` in CI must survive it unharmed.
    canary, secret = tmp_path / "outside" / "canary", tmp_path / "home" / ".token"
    canary.parent.mkdir()
    secret.write_text("the-users-token\n")
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        port = server.getsockname()[1]
        hostile_run = (
            f"RUN touch {canary}; bash -c 'echo x >/dev/tcp/127.0.0.1/{port}'; cat {secret} >&2; "
            'if [ "${TARGETARCH}" = amd64 ] && [ -z "${MAS_BUILD_TARGETS:-}" ]; then sleep 86400; fi; '
            "ls /usr/local/bin/ >/dev/null\n"
        )
        mas = superproject / SUBMODULE
        dockerfile = _git(mas, "show", "v1.19.0:Dockerfile")
        assert dockerfile.count(HOSTILE_AFTER) == 1
        _git(mas, "checkout", "--quiet", "--detach", "v1.19.0")
        (mas / "Dockerfile").write_text(
            dockerfile.replace(HOSTILE_AFTER, HOSTILE_AFTER.replace("FROM", hostile_run + "FROM")) + "\n"
        )
        _git(mas, "commit", "--quiet", "-am", "A pull request's head")
        _git(mas, "tag", "pr-head")
        _git(mas, "checkout", "--quiet", RECORDED)
        report = tmp_path / "hostile.json"

        done = subprocess.run(
            ["mas-harness", "compat", "--bump-to", "pr-head", "--output", str(report)],
            cwd=superproject,
            env=user_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,  # a hang guard, not a measurement: the script's own limit is 20 s
        )
        try:
            conn, _ = server.accept()
            conn.close()
            reached = True
        except BlockingIOError:
            reached = False

    assert not canary.exists(), "upstream's script wrote outside its scratch directory"
    assert not reached, "upstream's script reached the host's network"
    assert "the-users-token" not in done.stdout + done.stderr + report.read_text()
    document = json.loads(report.read_text())
    assert document["scripts"]["mode"] == "confined"
    failed = document["suggestion"]["failed_checks"]
    assert any(f.startswith("script-limits") and "stopped after 20s, the time limit" in f for f in failed), failed
    assert "fails: " in done.stdout
    assert done.returncode == 1, done.stdout + done.stderr


# -- bump, end to end ---------------------------------------------------------------------------------

V1_18_PATCH = REPO / "patches" / "patch-dockerfile-v1.18.patch"


def _everything(root: Path) -> dict[str, object]:
    """What a bump must leave as it found when it is not made: every file of the superproject and its submodule
    (their .git directories aside), both HEADs, the index and `git status`."""
    files = {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }
    return {
        "files": files,
        "status": _git(root, "status", "--porcelain", "--untracked-files=all"),
        "index": _git(root, "ls-files", "--stage"),
        "head": _git(root, "rev-parse", "HEAD"),
        "submodule_head": _git(root / SUBMODULE, "rev-parse", "HEAD"),
    }


def _at(root: Path, env: Mapping[str, str], tag: str, patch: Path) -> None:
    """The superproject as it would be at `tag` with `patch` fitted and committed."""
    _git(root / SUBMODULE, "checkout", "--quiet", tag)
    shutil.copyfile(patch, root / PATCH)
    _git(root, "commit", "--quiet", "-am", f"MAS at {tag}", env=env)


def test_bump_latest_from_v1_17_takes_the_variant_stages_both_and_verify_then_passes(
    superproject: Path, user_env: dict[str, str]
) -> None:
    """The shape change at v1.18: the users' patch cannot be rebased onto it, the harness's v1.18+ variant fits."""
    bumped = _harness(superproject, user_env, "bump", "latest")
    assert bumped.returncode == 0, bumped.stdout[-3000:] + bumped.stderr[-3000:]
    assert "latest is v1.19.0" in bumped.stdout
    assert f"Bump {SUBMODULE} from {RECORDED} to v1.19.0" in bumped.stdout, "the message, on stdout"
    assert _git(superproject, "status", "--porcelain", "--untracked-files=all") == f"M  {PATCH}\nM  {SUBMODULE}"
    assert (superproject / PATCH).read_bytes() == V1_18_PATCH.read_bytes()
    verified = _harness(superproject, user_env, "verify")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]


def test_bump_latest_from_a_release_the_patch_already_fits_moves_the_submodule_alone(
    superproject: Path, user_env: dict[str, str]
) -> None:
    _at(superproject, user_env, "v1.18.0", V1_18_PATCH)
    bumped = _harness(superproject, user_env, "bump", "latest", "--json")
    assert bumped.returncode == 0, bumped.stdout[-3000:] + bumped.stderr[-3000:]
    document = json.loads(bumped.stdout)
    assert (document["bump"]["from"], document["bump"]["to"], document["bump"]["take"]) == (
        "v1.18.0",
        "v1.19.0",
        "unchanged",
    )
    assert _git(superproject, "status", "--porcelain", "--untracked-files=all") == f"M  {SUBMODULE}"
    assert _harness(superproject, user_env, "verify").returncode == 0


def test_bump_latest_rebases_the_users_patch_when_every_hunk_merges(
    superproject: Path, user_env: dict[str, str]
) -> None:
    """A release (made here, in the submodule's repository) that edits a line of the patch's context."""
    _at(superproject, user_env, "v1.19.0", V1_18_PATCH)
    submodule = superproject / SUBMODULE
    dockerfile = submodule / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace("  cargo install --locked \\\n", "  cargo install --locked --quiet \\\n", 1)
    )
    _git(submodule, "commit", "--quiet", "-am", "quieter", env=user_env)
    _git(submodule, "tag", "v1.20.0")
    _git(submodule, "checkout", "--quiet", "v1.19.0")

    bumped = _harness(superproject, user_env, "bump", "latest", "--json")
    assert bumped.returncode == 0, bumped.stdout[-3000:] + bumped.stderr[-3000:]
    document = json.loads(bumped.stdout)
    assert (document["latest"], document["bump"]["take"]) == ("v1.20.0", "refreshed")
    assert (superproject / PATCH).read_bytes() != V1_18_PATCH.read_bytes()
    _git(submodule, "apply", "--check", str(superproject / PATCH))
    assert _harness(superproject, user_env, "verify").returncode == 0


def test_a_bump_that_fails_midway_leaves_every_file_and_git_state_identical(
    superproject: Path, user_env: dict[str, str], tmp_path: Path
) -> None:
    """The commit is the last step: a hook that refuses it comes after the checkout, the patch and the staging."""
    hook = superproject / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho 'not today' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = _everything(superproject)
    message = tmp_path / "message.txt"
    failed = _harness(superproject, user_env, "bump", "latest", "--commit", "--message-file", str(message))
    assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
    assert failed.stderr.count("\n") == 1 and "bump stopped at `commit`" in failed.stderr
    assert _everything(superproject) == before
    assert not message.exists()


def test_bump_without_a_ref_fits_the_patch_to_a_bots_gitlink_move(superproject: Path, user_env: dict[str, str]) -> None:
    _git(superproject / SUBMODULE, "checkout", "--quiet", "v1.19.0")
    _git(superproject, "commit", "--quiet", "-am", "Bump the submodule (a bot's pull request)", env=user_env)
    assert _harness(superproject, user_env, "verify").returncode == 1, "the bot moved the gitlink, not the patch"
    fitted = _harness(superproject, user_env, "bump", "--commit")
    assert fitted.returncode == 0, fitted.stdout[-3000:] + fitted.stderr[-3000:]
    assert _git(superproject, "show", "--name-only", "--format=", "HEAD").splitlines() == [PATCH]
    assert _git(superproject, "status", "--porcelain", "--untracked-files=all") == ""
    assert _harness(superproject, user_env, "verify").returncode == 0


def test_a_two_patch_series_applies_twice_reverse_checks_each_patch_reverts_checks_and_bumps(
    superproject: Path, user_env: dict[str, str]
) -> None:
    """The Dockerfile patch, then a .dockerignore change of the team's own, as `patches = [...]`: one apply, one
    journal, and the users' reverse-check snippet holds for each patch of the applied tree; verify checks each
    patch, and `bump latest` fits the Dockerfile patch and stages the other as it is."""
    submodule = superproject / SUBMODULE
    ignore = submodule / ".dockerignore"
    pristine = ignore.read_bytes()
    ignore.write_bytes(pristine + b"docs/\n")
    ignore_patch = _run(["git", "diff", "--", ".dockerignore"], cwd=submodule, env=user_env).stdout
    ignore.write_bytes(pristine)
    patches_dir = (superproject / PATCH).parent
    (patches_dir / "dockerignore.patch").write_text(ignore_patch)
    series = f'patches = ["{PATCH}", "{PATCH.rsplit("/", 1)[0]}/dockerignore.patch"]'
    (superproject / "pyproject.toml").write_text(CONFIG.replace(f'patch = "{PATCH}"', series))
    _git(superproject, "add", "-A")
    _git(superproject, "commit", "--quiet", "-m", "a series of two patches", env=user_env)
    before = {path: (submodule / path).read_bytes() for path in ("Dockerfile", ".dockerignore")}

    first = _harness(superproject, user_env, "apply", "--json")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert json.loads(first.stdout)["action"] == "applied"
    again = _harness(superproject, user_env, "apply", "--json")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert json.loads(again.stdout)["action"] == "no-op"
    assert (submodule / ".dockerignore").read_bytes() == pristine + b"docs/\n"
    for patch in (superproject / PATCH, patches_dir / "dockerignore.patch"):
        # The users' snippet, patch by patch: "already applied" for each.
        check = _run(["git", "apply", "--reverse", "--check", str(patch)], cwd=submodule, env=user_env)
        assert check.returncode == 0, (patch.name, check.stderr)
    status = _harness(superproject, user_env, "status", "--json")
    assert status.returncode == 0, status.stdout[-3000:] + status.stderr[-3000:]
    assert [p["state"] for p in json.loads(status.stdout)["patches"]] == ["applied", "applied"]

    reverted = _harness(superproject, user_env, "revert")
    assert reverted.returncode == 0, reverted.stdout[-3000:] + reverted.stderr[-3000:]
    assert {path: (submodule / path).read_bytes() for path in before} == before
    assert _git(submodule, "status", "--porcelain") == ""

    verified = _harness(superproject, user_env, "verify", "--json")
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-3000:]
    ignore_shown = f"{PATCH.rsplit('/', 1)[0]}/dockerignore.patch"
    assert [(p["patch"], p["state"]) for p in json.loads(verified.stdout)["patches"]] == [
        (PATCH, "applies"),
        (ignore_shown, "applies"),
    ]
    bumped = _harness(superproject, user_env, "bump", "latest")
    assert bumped.returncode == 0, bumped.stdout[-3000:] + bumped.stderr[-3000:]
    assert f"{ignore_shown}: applies as it is" in bumped.stdout
    assert _git(superproject, "status", "--porcelain", "--untracked-files=all") == f"M  {PATCH}\nM  {SUBMODULE}"
    assert (superproject / PATCH).read_bytes() == V1_18_PATCH.read_bytes()
    assert (patches_dir / "dockerignore.patch").read_text() == ignore_patch, "the team's own patch, as it was"
    again_verified = _harness(superproject, user_env, "verify")
    assert again_verified.returncode == 0, again_verified.stdout[-3000:] + again_verified.stderr[-3000:]
