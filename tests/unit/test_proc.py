"""git's environment: a git the harness runs sees only the repository it is pointed at, whatever GIT_* says."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.proc import clean_env, git
from tests.support import MakeRepo


def _what_git_sees(root: Path, foreign: str) -> dict[str, str]:
    """The answers of the git calls the harness makes in a checkout (a commit, the index, refs, config, objects)."""
    return {
        "toplevel": git("rev-parse", "--show-toplevel", cwd=root),
        "head": git("rev-parse", "HEAD", cwd=root),
        "tree": git("ls-tree", "-r", "HEAD", cwd=root),
        "index": git("ls-files", "--stage", cwd=root),
        "status": git("status", "--porcelain", cwd=root),
        "refs": git("for-each-ref", cwd=root),
        "config": git("config", "--get", "harness.probe", cwd=root, check=False),
        "foreign": git("cat-file", "-t", foreign, cwd=root, check=False),
        "describe": git("describe", "--always", "--tags", cwd=root, check=False),
        "author": git("var", "GIT_AUTHOR_IDENT", cwd=root).split(" <")[0],
    }


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GIT_DIR", "{other}/.git"),
        ("GIT_WORK_TREE", "{other}"),
        ("GIT_INDEX_FILE", "{other}/.git/index"),
        ("GIT_OBJECT_DIRECTORY", "{other}/.git/objects"),
        ("GIT_ALTERNATE_OBJECT_DIRECTORIES", "{other}/.git/objects"),
        ("GIT_COMMON_DIR", "{other}/.git"),
        ("GIT_NAMESPACE", "elsewhere"),
        ("GIT_CONFIG_PARAMETERS", "'harness.probe'='leaked'"),
        ("GIT_CONFIG_COUNT", "1"),
        ("GIT_CONFIG", "{other}/.git/config"),
        ("GIT_REPLACE_REF_BASE", "refs/other/"),
        ("GIT_NO_REPLACE_OBJECTS", "1"),
        ("GIT_AUTHOR_NAME", "someone else"),
        ("GIT_CEILING_DIRECTORIES", "{root}"),
        ("GIT_DISCOVERY_ACROSS_FILESYSTEM", "0"),
        ("GIT_QUARANTINE_PATH", "{other}/.git/objects"),
    ],
)
def test_an_inherited_git_variable_changes_nothing_git_sees(
    make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    root = make_repo({"Dockerfile": b"FROM scratch\n"}, name="ours")
    other = make_repo({"Other": b"theirs\n"}, name="theirs")
    git("config", "harness.probe", "theirs", cwd=other)
    (other / "untracked").write_bytes(b"x\n")
    foreign = git("rev-parse", "HEAD", cwd=other)
    # Refs and a replacement that the hostile values would make visible.
    git("update-ref", "refs/namespaces/elsewhere/refs/heads/main", foreign, cwd=root, check=False)
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "harness.probe")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "leaked")
    before = _what_git_sees(root, foreign)

    hostile = value.format(other=other, root=root)
    monkeypatch.setenv(name, hostile)
    after = _what_git_sees(root, foreign)

    assert after == before, f"{name} reached git"
    assert clean_env().get(name) != hostile


def test_the_kept_variables_are_how_git_reaches_a_remote_and_the_callers_additions_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i key")
    monkeypatch.setenv("GIT_SSL_CAINFO", "/etc/ca.pem")
    monkeypatch.setenv("GIT_SSL_NO_VERIFY", "1")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "ext")
    env = clean_env({"GIT_CEILING_DIRECTORIES": "/x"})
    assert env["GIT_SSH_COMMAND"] == "ssh -i key"
    assert env["GIT_SSL_CAINFO"] == "/etc/ca.pem"
    assert "GIT_SSL_NO_VERIFY" not in env, "TLS checks are not turned off by inheritance"
    assert env["GIT_ALLOW_PROTOCOL"] == "https:ssh:git:file", "set by the harness, never inherited"
    assert env["GIT_CEILING_DIRECTORIES"] == "/x"
