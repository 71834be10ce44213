"""Upstream's build script runs confined: a hostile RUN line changes nothing outside its scratch directory.

The static checks execute the builder stage's build RUN of whatever ref is checked (a pull
request's branch too). These tests give them hostile RUN lines - writes outside the scratch
directory, a network call, a read of the user's files, a sleep past the limit, a fork bomb - and
check that nothing reaches the host, that the run ends at the limit, and that the finding says so.
Each hostile case is also run `--unconfined` where that is safe, to show the test would see the
harm if the confinement were gone.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from harness.analysis import dockerfile as dfm
from harness.analysis.confine import Backend, Confinement, detect
from harness.analysis.sandbox import Sandbox, run_build_script
from harness.analysis.semantic import EXECUTED_CHECKS, check_dockerfile
from harness.analysis.static import StaticChecks, check_patched
from harness.analysis.verdicts import VerdictCache
from harness.cli.main import main
from tests.support import DockerfileTexts

ANCHOR = "  set -euf; \\\n"
"""The first line of v1.19.0's patched build RUN script, where a hostile line goes."""


ONE_SCENARIO = '[ -z "${MAS_BUILD_TARGETS}" ] && [ "${TARGETARCH}" = amd64 ]'
"""True in the scenario of the defaults on amd64 alone: a hostile line there costs the time limit once."""


def hostile(patched: str, commands: str) -> str:
    assert patched.count(ANCHOR) == 1, "anchor not found exactly once: rewrite the hostile Dockerfile"
    return patched.replace(ANCHOR, f"  set -euf; {commands}; \\\n")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port on the host's loopback that a script reaching the host's network would connect to."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


def connected(server: socket.socket) -> bool:
    try:
        conn, _ = server.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


@pytest.fixture
def harm(tmp_path: Path, listener: socket.socket) -> tuple[str, Path, Path, socket.socket]:
    """A RUN prefix that writes outside its scratch directory, reads a file of the user's and calls the network."""
    canary = tmp_path / "outside" / "written-by-upstream"
    home = tmp_path / "home"
    home.mkdir()
    (home / "secret").write_text("the-users-token\n")
    port = listener.getsockname()[1]
    commands = (
        f"mkdir -p {canary.parent} && touch {canary} || true; "
        f"cat {home}/secret >&2 || true; "
        f"bash -c 'echo hello >/dev/tcp/127.0.0.1/{port}' || true"
    )
    return commands, canary, home, listener


def run_check(path: Path, *args: str) -> tuple[int, dict[str, object], str]:
    out = Path(f"{path}.json")
    code = main(["check", "--dockerfile", str(path), "--output", str(out), "-q", *args])
    return code, json.loads(out.read_text()), out.read_text()


def test_a_hostile_builder_run_reaches_nothing_outside_its_scratch_directory(
    dockerfile_texts: DockerfileTexts,
    tmp_path: Path,
    harm: tuple[str, Path, Path, socket.socket],
    confinement: Confinement,
) -> None:
    commands, canary, _, listener = harm
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(hostile(dockerfile_texts("v1.19.0")[1], commands))

    code, report, text = run_check(dockerfile, "--no-cache")

    assert not canary.exists(), "the script wrote outside its scratch directory"
    assert not connected(listener), "the script reached the host's network"
    assert "the-users-token" not in text
    assert report["scripts"] == {"mode": "confined", "backend": str(confinement.backend)}
    # What the script printed while trying is still seen: bad targets are no longer refused in one line.
    assert code == 1
    results = report["results"]
    assert isinstance(results, list)
    assert {str(r["name"]).split(" [")[0] for r in results if r["status"] != "ok"} == {"targets-validated"}


def test_the_same_run_unconfined_does_the_harm_the_confined_run_is_spared(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, harm: tuple[str, Path, Path, socket.socket]
) -> None:
    # The control: without confinement the script's writes and network call land, so the test above can fail.
    commands, canary, _, listener = harm
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(hostile(dockerfile_texts("v1.19.0")[1], commands))

    _, report, _ = run_check(dockerfile, "--no-cache", "--unconfined")

    assert canary.exists()
    assert connected(listener)
    assert report["scripts"] == {"mode": "unconfined", "backend": "unconfined"}


def test_a_run_that_sleeps_past_the_limit_is_stopped_there_and_fails(
    dockerfile_texts: DockerfileTexts, confinement: Confinement
) -> None:
    text = hostile(dockerfile_texts("v1.19.0")[1], f"if {ONE_SCENARIO}; then sleep 86400; fi")
    quick = replace(confinement, time_limit=2.0)

    findings = check_dockerfile(dfm.parse(text), confinement=quick, shape="single")

    [limit] = [f for f in findings if f.check == "script-limits"]
    assert not limit.ok
    assert "stopped after 2s, the time limit" in limit.message
    assert limit.line == 151


def test_a_fork_bomb_is_held_to_the_process_limit_and_stopped_at_the_time_limit(
    dockerfile_texts: DockerfileTexts, confinement: Confinement
) -> None:
    # The bomb takes every process slot, so the shell's own `sleep` may fail to fork: it retries (a builtin loop)
    # until the time limit, rather than ending the script early with "can't fork" on a loaded machine.
    bomb = "f() { f | f & }; f; until sleep 60; do :; done"
    text = hostile(dockerfile_texts("v1.19.0")[1], f"if {ONE_SCENARIO}; then {bomb}; fi")
    quick = replace(confinement, time_limit=2.0)

    findings = check_dockerfile(dfm.parse(text), confinement=quick, shape="single")

    [limit] = [f for f in findings if f.check == "script-limits"]
    assert "stopped after 2s" in limit.message
    left = subprocess.run(["pgrep", "-u", "65534", "-f", "sleep 60"], capture_output=True, check=False)
    assert left.stdout == b"", "processes of the fork bomb outlived the run"


def test_links_a_script_plants_are_never_followed_when_the_harness_reads_what_it_left(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, sandbox: Sandbox
) -> None:
    # After the run the harness reads what the move step installed and what the final stages copy; a link planted
    # there, pointing at a file of the host, must not bring that file into the findings (or a CI log).
    secret = tmp_path / "secret"
    secret.write_text("the-users-token\n")
    secret.chmod(0o644)
    plant = f"ln -sf {secret} /usr/local/bin/mas-cli; mkdir -p target; ln -sf {tmp_path} target/release; exit 0"
    df = dfm.parse(hostile(dockerfile_texts("v1.19.0")[1], plant))

    run = run_build_script(df, {}, targetarch="amd64", sandbox=sandbox)

    assert run.installed == {"mas-cli": ""}
    assert [copy.content for copy in run.copy_sources] == [None] * len(run.copy_sources)
    assert run.left_in_target == ()


def without_confinement(reason: str = "simulated: this machine forbids user namespaces") -> Confinement:
    return detect(probe=lambda _: reason)


def test_without_confinement_the_executed_checks_are_errors_that_say_why_and_what_to_do(
    dockerfile_texts: DockerfileTexts,
) -> None:
    findings = check_dockerfile(
        dfm.parse(dockerfile_texts("v1.19.0")[1]), confinement=without_confinement(), shape="single"
    )

    errors = [f for f in findings if f.error]
    assert {f.check for f in errors} == set(EXECUTED_CHECKS)
    assert all(f.needs == "confinement" for f in errors)
    assert "simulated: this machine forbids user namespaces" in errors[0].message
    assert "apt-get install bubblewrap" in errors[0].message
    assert "--unconfined" in errors[0].message
    assert [f.check for f in findings if not f.error] == ["knobs-declared"] * 4  # read from the file: still checked


@pytest.fixture
def path_without_confinement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH with everything the checks use but prlimit, bwrap, unshare and setpriv: no way to confine a script."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("git", "dash", "sh", "env", "shellcheck", "hadolint", "bash", "mkdir", "touch", "cat"):
        found = shutil.which(tool)
        if found is not None:
            (tools / tool).symlink_to(found)
    monkeypatch.setenv("PATH", str(tools))


@pytest.mark.usefixtures("path_without_confinement")
def test_a_check_that_cannot_confine_the_script_exits_3_and_never_passes(
    dockerfile_texts: DockerfileTexts, tmp_path: Path
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(dockerfile_texts("v1.19.0")[1])

    code, report, _ = run_check(dockerfile)

    assert code == 3
    assert report["status"] == "error"
    assert report["ok"] is False
    scripts = report["scripts"]
    assert isinstance(scripts, dict)
    assert scripts["mode"] == "not-run"
    results = report["results"]
    assert isinstance(results, list)
    assert {r["name"] for r in results if r.get("needs") == "confinement"} == set(EXECUTED_CHECKS)


@pytest.mark.usefixtures("path_without_confinement")
def test_unconfined_runs_the_script_anyway_and_says_so(
    dockerfile_texts: DockerfileTexts, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(dockerfile_texts("v1.19.0")[1])

    code = main(["check", "--dockerfile", str(dockerfile), "--unconfined", "--no-cache"])

    assert code == 0
    assert "upstream's build script: run unconfined on this machine (--unconfined)" in capsys.readouterr().out


def test_findings_the_machine_could_not_compute_are_not_stored_as_verdicts(
    dockerfile_texts: DockerfileTexts, tmp_path: Path
) -> None:
    store = VerdictCache(tmp_path / "verdicts", harness_version="test", versions=dict)
    checks = StaticChecks(confinement=without_confinement(), verdicts=store)
    check_patched(dockerfile_texts("v1.19.0")[1], pristine=None, checks=checks, shape="single")
    check_patched(dockerfile_texts("v1.19.0")[1], pristine=None, checks=checks, shape="single")

    assert (store.computed, store.reused) == (2, 0)
    assert not list((tmp_path / "verdicts").rglob("*.json"))


@pytest.mark.skipif(os.geteuid() != 0, reason="switches to another user to try the unprivileged ways")
@pytest.mark.parametrize("backend", [Backend.BWRAP, Backend.UNSHARE])
def test_an_unprivileged_user_is_confined_too(backend: Backend, listener: socket.socket) -> None:
    # CI runners are not root: bwrap, or unshare with a user namespace of its own, is what they get. The command
    # the harness would run is run here as nobody, with a hostile script.
    needed = "bwrap" if backend is Backend.BWRAP else "unshare"
    if shutil.which(needed) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{needed} is not installed: scripts/run.sh installs it")
        pytest.skip(f"{needed} is not installed")
    with tempfile.TemporaryDirectory(prefix="mas-harness-test-") as tmp:  # pytest's own is root's alone
        run_as_nobody(backend, Path(tmp), listener)


def run_as_nobody(backend: Backend, tmp_path: Path, listener: socket.socket) -> None:
    scratch, doubles, outside = tmp_path / "scratch", tmp_path / "doubles", tmp_path / "outside"
    for directory in (scratch, scratch / "tmp", doubles, outside):
        directory.mkdir()
        os.chown(directory, 65534, 65534)
    tmp_path.chmod(0o755)
    port = listener.getsockname()[1]
    script = (
        f"touch {outside}/canary || true; bash -c 'echo x >/dev/tcp/127.0.0.1/{port}' || true; "
        "id -u >/scratch/whoami; : >/scratch/probe"
    )
    confinement = Confinement(backend=backend, as_root=False)
    command = confinement.command(script, env={"PATH": "/usr/bin:/bin"}, scratch=scratch, doubles=doubles, cwd=scratch)

    done = subprocess.run(
        command, capture_output=True, text=True, user=65534, group=65534, extra_groups=[], cwd=tmp_path, check=False
    )

    assert done.returncode == 0, done.stderr
    assert (scratch / "probe").is_file()
    assert (scratch / "whoami").read_text() == "1000\n"
    assert not (outside / "canary").exists()
    assert not connected(listener)
