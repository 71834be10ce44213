"""Pure logic shared by the local base images: the suite's sources, and removing a rootfs safely. No docker."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build import rootfs as rootfs_image
from harness.errors import BadInput, EnvironmentProblem


def test_sources_list_has_updates_and_security() -> None:
    text = rootfs_image.sources_list("bookworm")
    assert "deb http://deb.debian.org/debian bookworm main\n" in text
    assert "bookworm-updates main" in text
    assert "deb http://deb.debian.org/debian-security bookworm-security main" in text


def test_unknown_suite_is_bad_input() -> None:
    with pytest.raises(BadInput):
        rootfs_image.sources_list("sid")


def test_remove_tree_refuses_while_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "proc").mkdir(parents=True)
    unmounted: list[str] = []
    # A mount that will not go away: umount "succeeds" but the table still lists it.
    monkeypatch.setattr(rootfs_image, "run", lambda *args, **_: unmounted.append(str(args[-1])))

    with pytest.raises(EnvironmentProblem, match="still mounted"):
        rootfs_image.remove_tree(rootfs, mounts=lambda: [str(rootfs / "proc")])

    assert unmounted == [str(rootfs / "proc")]
    assert rootfs.exists()


def test_remove_tree_removes_when_nothing_is_mounted(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    (rootfs / "usr").mkdir(parents=True)
    rootfs_image.remove_tree(rootfs, mounts=lambda: ["/proc", str(tmp_path / "rootfs-other")])
    assert not rootfs.exists()
