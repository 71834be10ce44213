from __future__ import annotations

from harness.upstream.releases import newest_tag


def test_the_newest_tag_is_the_highest_semantic_version_without_pre_releases() -> None:
    tags = ["v1.9.0", "v1.19.0", "v1.20.0-rc.0", "unstable", "v1.10.0", "latest", "1234567"]
    assert newest_tag(tags, pre=False) == "v1.19.0"
    assert newest_tag(tags, pre=True) == "v1.20.0-rc.0"
    assert newest_tag(["v2.0.0-rc.1", "v1.20.0-rc.0"], pre=False) is None
    assert newest_tag(["v2.0.0-rc.1", "v2.0.0"], pre=True) == "v2.0.0"
    assert newest_tag(["main", "unstable"], pre=True) is None
