"""The second test engine itself: it starts beside the machine's engine without disturbing it, is a buildx builder
of its own, and leaves nothing behind when it is stopped."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from python_on_whales import docker

from harness.build.docker_engine import Engine
from tests.support import unavailable
from tests.support.second_engine import (
    SecondEngineUnavailable,
    mounts_under,
    start_second_engine,
    stop_second_engine,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class FirstEngineState:
    bridge: str
    """`ip -o link show docker0`: its index, flags and address; gone or recreated, it differs."""
    images: frozenset[tuple[str, str]]
    contexts: frozenset[str]
    builders: frozenset[str]


def first_engine_state() -> FirstEngineState:
    bridge = subprocess.run(["ip", "-o", "link", "show", "docker0"], capture_output=True, text=True, check=False)
    # The link's operational state (carrier) follows the first engine's own containers; the rest is the bridge.
    line = bridge.stdout.split("state")[0] + bridge.stdout.split("link/ether")[-1] if bridge.returncode == 0 else ""
    return FirstEngineState(
        bridge=line,
        images=frozenset(
            (tag, image.id or "") for image in docker.image.list() for tag in image.repo_tags or ["<none>"]
        ),
        contexts=frozenset(context.name or "" for context in docker.context.list()),
        builders=frozenset(builder.name or "" for builder in docker.buildx.list()),
    )


def test_a_second_engine_leaves_the_first_as_it_was(engine: Engine) -> None:
    before = first_engine_state()
    assert before.bridge, "the first engine has its docker0 bridge to begin with"
    try:
        second = start_second_engine()
    except SecondEngineUnavailable as exc:
        unavailable(f"no second test engine: {exc}")
    pids = [second.pid(which) for which in ("dockerd", "unshare", "slirp4netns")]
    assert None not in pids
    try:
        assert second.answers()
        assert second.client.info().id != docker.info().id, "another engine, not the first one again"
        assert second.client.info().docker_root_dir == second.root / "data"
        assert second.name in {builder.name for builder in docker.buildx.list()}, "its context brings a builder"
        assert docker.buildx.inspect(second.name).driver == "docker"
        during = first_engine_state()
        assert during.bridge == before.bridge, "docker0 is untouched while the second engine runs"
        assert start_second_engine(name=second.name) == second, "starting it again is the same engine"
    finally:
        stop_second_engine(second)
    after = first_engine_state()
    assert after.bridge == before.bridge
    # Other users of the machine may build meanwhile: nothing the first engine had is gone or retagged.
    assert before.images <= after.images
    assert second.name not in after.contexts
    assert second.name not in after.builders
    assert not second.root.exists(), "its data root is removed"
    assert mounts_under(Path(second.root)) == []
    assert [pid for pid in pids if Path(f"/proc/{pid}").exists()] == [], "its daemon and network are stopped"
