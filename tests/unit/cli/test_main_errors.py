"""A user's mistake is one line on stderr and exit 2, never a traceback, and nothing of theirs is written.

Every case runs the console entry point (`harness.cli.main.main`) as the users do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import files
from harness.cli.main import main
from harness.results import SCHEMA_VERSION
from harness.upstream.cache import DOCKERFILE
from tests.support import BUNDLE, CheckoutFactory, git
from tests.support.numbered import UPSTREAM

Scenario = Callable[[Path, pytest.MonkeyPatch], tuple[list[str], str]]


PATCH = b"--- a/Dockerfile\n+++ b/Dockerfile\n@@ -3,3 +3,3 @@\n line 3\n-line 4\n+line 4 patched\n line 5\n"


def _compat(tmp_path: Path, *extra: str) -> list[str]:
    return ["compat", "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "cache"), "--ref", "v1.7.0", *extra]


def _report(tmp_path: Path) -> list[str]:
    """`summary` of one good report: a command that writes report files and needs nothing else."""
    good = {"schema_version": SCHEMA_VERSION, "command": "compat", "results": [{"name": "a", "status": "ok"}]}
    (tmp_path / "good.json").write_text(json.dumps(good))
    return ["summary", "--reports", str(tmp_path), "--refs", "good.json"]


def _summary_of(name: str, data: bytes, after_the_path: str = " is not a") -> Scenario:
    def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
        (tmp_path / name).write_bytes(data)
        flag = "--pytest" if name.endswith(".xml") else "--refs"
        return ["summary", "--reports", str(tmp_path), flag, name], f"{tmp_path / name}{after_the_path}"

    return scenario


def _pins(text: str, message: str) -> Scenario:
    def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
        (tmp_path / "pins.toml").write_text(text)
        return [*_compat(tmp_path), "--pins", str(tmp_path / "pins.toml")], message

    return scenario


def _sink(flag: str, target: str, message: str) -> Scenario:
    """`FULL` is a disk that is full at write time: a link in the test's directory to /dev/full, so that a
    writer that replaces its target (as root may, in /dev) replaces the link, never the device."""

    def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
        (tmp_path / "full").symlink_to("/dev/full")
        path = target.replace("TMP", str(tmp_path)).replace("FULL", str(tmp_path / "full"))
        if flag.startswith("$"):
            monkeypatch.setenv(flag[1:], path)
            return _report(tmp_path), message
        return [*_report(tmp_path), flag, path], message

    return scenario


def _cache_dir(under_a_file: bool) -> Scenario:
    def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
        (tmp_path / "a-file").write_text("")
        cache = tmp_path / "a-file" / "cache" if under_a_file else tmp_path / "a-file"
        argv = ["compat", "--upstream", str(BUNDLE), "--cache-dir", str(cache), "--ref", "v1.7.0"]
        return argv, "a-file is not a directory" if under_a_file else "is a file, not a directory"

    return scenario


def _two_reports_one_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    same = str(tmp_path / "report")
    return [*_report(tmp_path), "--output", same, "--junit", same], "--output and --junit both name"


def _pins_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
    return [*_compat(tmp_path), "--pins", str(tmp_path)], "is a directory, not a regular file: name the file"


def _upstream(url: str) -> Scenario:
    def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
        return ["compat", "--upstream", url, "--cache-dir", str(tmp_path / "c"), "--ref", "v1.7.0"], "is not allowed"

    return scenario


def _full_checkout(command: str) -> Scenario:
    def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
        tree = tmp_path / "tree"
        tree.mkdir()
        patch = tmp_path / "p.patch"
        patch.write_bytes(PATCH)
        (tree / "Dockerfile").write_bytes(UPSTREAM)
        if command == "revert":
            assert main(["apply", "--checkout", str(tree), "--patch", str(patch)]) == 0
        real = files._write_at

        def disk_full_for_the_dockerfile(at: tuple[int, str], data: bytes, **options: object) -> None:
            """A test double of a full disk: writing the Dockerfile fails as the OS would fail it."""
            if at[1] == "Dockerfile":
                raise OSError(28, "No space left on device")
            real(at, data, **options)  # type: ignore[arg-type]

        monkeypatch.setattr(files, "_write_at", disk_full_for_the_dockerfile)
        return [command, "--checkout", str(tree), "--patch", str(patch)], "No space left on device; nothing was changed"

    return scenario


def _rename_patch(command: str) -> Scenario:
    def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str]:
        rename = b"diff --git a/Dockerfile b/D2\nrename from Dockerfile\nrename to D2\n--- a/Dockerfile\n+++ b/D2\n"
        (tmp_path / "r.patch").write_bytes(rename + PATCH.split(b"\n", 2)[2])
        argv = [command, "--upstream", str(BUNDLE), "--cache-dir", str(tmp_path / "c"), "--ref", "v1.7.0"]
        return [*argv, "--patch", str(tmp_path / "r.patch")], "asks for a rename"

    return scenario


MISTAKES: dict[str, Scenario] = {
    "output-in-a-missing-directory": _sink("--output", "TMP/missing/out.json", "is not a directory"),
    "output-is-a-directory": _sink("--output", "TMP", "is a directory; name a file"),
    "output-on-a-full-disk": _sink("--output", "FULL", "No space left on device"),
    "junit-on-a-full-disk": _sink("--junit", "FULL", "No space left on device"),
    "markdown-on-a-full-disk": _sink("--markdown", "FULL", "No space left on device"),
    "step-summary-on-a-full-disk": _sink("$GITHUB_STEP_SUMMARY", "FULL", "No space left on device"),
    "step-summary-is-a-directory": _sink("$GITHUB_STEP_SUMMARY", "TMP", "is a directory; name a file"),
    "two-reports-one-file": _two_reports_one_file,
    "cache-dir-is-a-file": _cache_dir(under_a_file=False),
    "cache-dir-under-a-file": _cache_dir(under_a_file=True),
    "apply-on-a-full-checkout": _full_checkout("apply"),
    "revert-on-a-full-checkout": _full_checkout("revert"),
    "pins-is-a-directory": _pins_directory,
    "pins-pin-is-a-string": _pins('pin = "x"\n', "`pin` must be an array of tables"),
    "pins-pin-is-not-a-table": _pins("pin = [1, 2]\n", "`pin` must be an array of tables"),
    "pins-upstream-is-a-string": _pins('upstream = "x"\n', "[upstream] must be a table"),
    "pins-url-is-a-number": _pins("[upstream]\nurl = 5\n", "`url` must be a non-empty string, not the int 5"),
    "pins-typo-pni": _pins('[[pni]]\ntag = "v1.7.0"\n', "unknown table [[pni]]"),
    "pins-unknown-key-in-a-pin": _pins('[[pin]]\ntag = "v1.7.0"\ntagg = "x"\n', "unknown key `tagg`"),
    "pins-not-toml": _pins("[[pin]\n", "is not valid TOML"),
    "summary-json-malformed": _summary_of("r.json", b"{not json"),
    "summary-json-not-utf8": _summary_of("r.json", b'{"a": "\xff"}'),
    "summary-json-nested-too-deep": _summary_of("r.json", b"[" * 100_000),
    "summary-json-wrong-shape": _summary_of(
        "r.json", b'{"schema_version": 1, "results": [{"status": "ok"}]}', ": not a result the harness wrote"
    ),
    "summary-json-a-list": _summary_of("r.json", b"[1, 2]"),
    "summary-xml-malformed": _summary_of("r.xml", b"<testsuites>"),
    "summary-xml-unknown-encoding": _summary_of("r.xml", b'<?xml version="1.0" encoding="klingon"?><a/>'),
    "compat-rename-patch": _rename_patch("compat"),
    "check-rename-patch": _rename_patch("check"),
    "upstream-ext-transport": _upstream("ext::sh -c touch% /tmp/mas-harness-pwned"),
    "upstream-http": _upstream("http://example.invalid/mas.git"),
    "upstream-remote-helper-url": _upstream("fd::17"),
}


@pytest.mark.parametrize("scenario", MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_is_one_line_and_exit_2(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv, message = scenario(tmp_path, monkeypatch)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("mas-harness: error: "), err
    assert message in lines[0]


def test_nothing_of_the_users_is_written_on_a_full_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv, _ = _full_checkout("apply")(tmp_path, monkeypatch)
    assert main(argv) == 2
    assert (tmp_path / "tree" / "Dockerfile").read_bytes() == UPSTREAM
    assert sorted(p.name for p in (tmp_path / "tree").iterdir()) == ["Dockerfile"], "no journal, no temp file left"


def test_a_full_standard_output_is_one_line_and_exit_2(tmp_path: Path) -> None:
    argv = _report(tmp_path)
    with Path("/dev/full").open("w") as full:
        child = subprocess.run(
            [sys.executable, "-m", "harness", *argv], stdout=full, stderr=subprocess.PIPE, text=True, check=False
        )
    assert "Traceback" not in child.stderr
    assert (child.returncode, child.stderr.strip().splitlines()) == (
        2,
        ["mas-harness: error: cannot write to standard output: No space left on device"],
    )


# -- a read-only checkout: a real read-only file system ---------------------------------------------


CONSOLE = "import sys; from harness.cli.main import main; raise SystemExit(main(sys.argv[1:]))"


def _on_a_read_only_tree(tree: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the command line with `tree` on a read-only file system: a read-only bind mount in a private mount
    namespace (root ignores file modes), else, for an ordinary user, the tree's own modes."""
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        if unshare is None:
            pytest.skip("a read-only file system needs a private mount namespace: unshare is not installed")
        mount = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
        wrapper = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", mount, "sh"]
        probe = subprocess.run([*wrapper, str(tree), "true"], capture_output=True, check=False)
        if probe.returncode != 0:
            pytest.skip(f"a read-only file system needs a private mount namespace: {probe.stderr!r}")
        command = [*wrapper, str(tree), sys.executable, "-c", CONSOLE, *argv]
        return subprocess.run(command, capture_output=True, text=True, check=False)
    modes = {path: path.stat().st_mode for path in (tree, *tree.iterdir())}
    for path in modes:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        return subprocess.run([sys.executable, "-c", CONSOLE, *argv], capture_output=True, text=True, check=False)
    finally:
        for path, mode in modes.items():
            path.chmod(mode)


@pytest.mark.parametrize("command", ["apply", "revert"])
def test_a_read_only_checkout_is_one_line_and_exit_2(checkout: CheckoutFactory, command: str) -> None:
    tree = checkout("v1.7.0")
    if command == "revert":
        assert main(["apply", "--checkout", str(tree)]) == 0
    before = (tree / DOCKERFILE).read_bytes()
    child = _on_a_read_only_tree(tree, [command, "--checkout", str(tree)])
    assert "Traceback" not in child.stderr
    lines = child.stderr.strip().splitlines()
    assert (child.returncode, len(lines)) == (2, 1), child.stderr
    assert f"cannot write {tree / DOCKERFILE}: " in lines[0] and "nothing was changed" in lines[0]
    assert (tree / DOCKERFILE).read_bytes() == before
    journal = Path(git(tree, "rev-parse", "--git-path", "mas-harness-journal"))
    assert not (tree / journal).exists(), "the journal went with the rollback"


def test_a_fetch_git_cannot_finish_is_exit_5_quoting_git(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An upstream that lists its tags but has lost the objects behind them: the user's ref and flags are fine.
    upstream = tmp_path / "upstream.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(BUNDLE), str(upstream))
    for pack in (upstream / "objects" / "pack").iterdir():
        pack.unlink()
    for loose in (upstream / "objects").glob("??"):
        shutil.rmtree(loose)
    argv = ["compat", "--upstream", str(upstream), "--cache-dir", str(tmp_path / "cache"), "--ref", "v1.7.0"]
    assert main(argv) == 5
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"mas-harness: error: cannot fetch v1.7.0 from upstream {upstream}: `git ")
