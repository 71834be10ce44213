"""Where upstream comes from: the source kinds, git's rules for a ref name, and the transports.

Git runs only over https, ssh, git, file (local paths and bundles): an `ext::` URL, which makes git run a command,
is refused up front wherever it comes from (--upstream, `upstream =`, .gitmodules), and git itself refuses it as the
harness runs git, whatever the environment or configuration allows.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli.main import main
from harness.errors import UpstreamError
from harness.proc import run
from harness.upstream.source import UpstreamSource, is_ref_name
from tests.support import MakeRepo, git

PATCH = b"--- a/Dockerfile\n+++ b/Dockerfile\n@@ -3,3 +3,3 @@\n line 3\n-line 4\n+line 4 patched\n line 5\n"


def test_an_ext_upstream_never_runs_its_command_whatever_git_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'protocol.ext.allow'='always' 'protocol.allow'='always'")
    monkeypatch.setenv("GIT_ALLOW_PROTOCOL", "ext:fd:https:file")
    url = f"ext::sh -c touch% {marker}"
    assert main(["compat", "--upstream", url, "--cache-dir", str(tmp_path / "c"), "--ref", "v1.7.0"]) == 2
    assert "is not allowed" in capsys.readouterr().err
    # Past the up-front check too: git itself, as the harness runs it, refuses the transport.
    refused = run("git", "ls-remote", url, check=False)
    assert refused.returncode != 0
    assert b"transport 'ext' not allowed" in refused.stderr
    assert not marker.exists(), "the command in the URL never ran"


def test_a_gitmodules_url_with_ext_is_refused_before_git_sees_it(
    make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    root = make_repo({"README": b"x\n"}, name="super")
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},mas")
    (root / ".gitmodules").write_text(f'[submodule "mas"]\n\tpath = mas\n\turl = ext::sh -c touch% {marker}\n')
    (root / "mas").mkdir()
    (root / "p.patch").write_bytes(PATCH)
    (root / "pyproject.toml").write_text('[tool.mas-harness]\nsubmodule = "mas"\npatch = "p.patch"\n')
    git(root, "add", ".gitmodules", "pyproject.toml", "p.patch")
    git(root, "commit", "--quiet", "-m", "an ext:: submodule")
    argv = ["compat", "--superproject", str(root), "--bump-to", "v1.7.0", "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not allowed" in err[0]
    assert not marker.exists()


@pytest.mark.parametrize(
    "url",
    ["https://github.com/element-hq/matrix-authentication-service.git", "ssh://git@example.com/mas.git",
     "git@github.com:element-hq/matrix-authentication-service.git", "git://example.com/mas.git",
     "file:///srv/mas.git"],
)  # fmt: skip
def test_the_allowed_transports_are_kept_as_given(url: str) -> None:
    assert UpstreamSource.parse(url).location == url


def test_an_ext_url_in_the_pins_or_the_superproject_table_is_refused(
    make_repo: MakeRepo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    url = f"ext::sh -c touch% {marker}"
    pins = tmp_path / "pins.toml"
    pins.write_text(f'[upstream]\nurl = "{url}"\ndefault_patch = "p.patch"\n')
    assert main(["compat", "--pins", str(pins), "--cache-dir", str(tmp_path / "c"), "--ref", "v1.7.0"]) == 2
    root = make_repo({"README": b"x\n"}, name="super")
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},mas")
    (root / "mas").mkdir()
    (root / "p.patch").write_bytes(PATCH)
    (root / "pyproject.toml").write_text(
        f'[tool.mas-harness]\nsubmodule = "mas"\npatch = "p.patch"\nupstream = "{url}"\n'
    )
    argv = ["compat", "--superproject", str(root), "--bump-to", "v1.7.0", "--cache-dir", str(tmp_path / "c")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("is not allowed" in line for line in err), err
    assert not marker.exists()


def test_source_kinds(bundle: Path, tmp_path: Path) -> None:
    assert UpstreamSource.parse("https://example.invalid/mas.git").kind == "url"
    assert UpstreamSource.parse("git@example.invalid:mas.git").kind == "url"
    assert UpstreamSource.parse(str(bundle)).kind == "bundle"
    repo = tmp_path / "repo"
    git(tmp_path, "init", "--quiet", str(repo))
    assert UpstreamSource.parse(str(repo)).kind == "path"
    (tmp_path / "plain.txt").write_text("x")
    with pytest.raises(UpstreamError, match="not a git bundle"):
        UpstreamSource.parse(str(tmp_path / "plain.txt"))
    with pytest.raises(UpstreamError, match="neither"):
        UpstreamSource.parse(str(tmp_path / "missing"))


def test_ref_names_follow_gits_rules() -> None:
    for good in ("v1.17.0", "main", "release/1.x", "v2.1.0-rc.0", "feature_x"):
        assert is_ref_name(good), good
    for bad in (
        "",
        "@",
        "-x",
        "a..b",
        "a//b",
        "a/.b",
        "a.lock",
        "a/",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[",
        "a@{1}",
    ):
        assert not is_ref_name(bad), bad
