"""Shared fixtures: the bundled upstream data, a per-session checkout cache, git repos made here."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.analysis.confine import Confinement, detect
from harness.analysis.sandbox import Sandbox, open_sandbox
from harness.analysis.verdicts import VerdictCache
from harness.cli.main import main
from harness.config.pins import Pins, load_pins
from harness.patch.apply import patched_contents
from harness.patch.patchfile import Patch
from harness.upstream.cache import DOCKERFILE, ResolvedRef, UpstreamCache
from harness.upstream.source import UpstreamSource
from tests.support import BUNDLE, CheckoutFactory, CompatRun, DockerfileTexts, git


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that forgets to choose its cache (or its journal directory) must not touch the user's real one."""
    monkeypatch.setenv("MAS_HARNESS_CACHE", str(tmp_path / "unchosen-cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "unchosen-state"))
    monkeypatch.delenv("MAS_UPSTREAM", raising=False)


@pytest.fixture(scope="session")
def bundle() -> Path:
    if not BUNDLE.is_file():
        pytest.fail(f"upstream test data {BUNDLE} is missing (set MAS_HARNESS_BUNDLE)")
    return BUNDLE


@pytest.fixture(scope="session")
def confinement() -> Confinement:
    """How this machine confines upstream's build script, as a run of the harness would find it.

    Without any (no bubblewrap, user namespaces forbidden) the tests that run scripts cannot say what they claim:
    under CI that is a failure, elsewhere a skip naming the remedy.
    """
    found = detect()
    if not found.available:
        if os.environ.get("CI") == "true":
            pytest.fail(found.unavailable)
        pytest.skip(found.unavailable)
    return found


@pytest.fixture(scope="session")
def sandbox(confinement: Confinement) -> Iterator[Sandbox]:
    with open_sandbox(confinement) as opened:
        yield opened


@pytest.fixture(scope="session")
def pins() -> Pins:
    return load_pins()


@pytest.fixture(scope="session")
def main_patch(pins: Pins) -> Patch:
    """The v0.15.0 - v1.17.0 variant, the patch the harness was first written for."""
    return Patch.load(pins.series.choose("v1.7.0").variant.patch)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache directory (checkouts and static verdicts) for the tests that only read upstream: a Dockerfile's
    static checks then run once a session however many tests check it. Tests of the cache itself make their own.

    Under pytest-xdist the workers share it too (beside their own temporary directories): the cache is made for
    concurrent runs, with a file lock around every fetch and every verdict computed.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    cache = root / "shared-cache"
    cache.mkdir(exist_ok=True)
    return cache


@pytest.fixture
def fresh_cache(tmp_path: Path, shared_cache: Path) -> Path:
    """A checkout cache of the test's own, empty, that reads and writes the session's verdict store: for tests about
    what a run fetches, not about what it computes (verdicts are named by their content, so sharing them is safe)."""
    verdicts = shared_cache / "verdicts"
    verdicts.mkdir(exist_ok=True)
    cache = tmp_path / "fresh-cache"
    cache.mkdir()
    (cache / "verdicts").symlink_to(verdicts, target_is_directory=True)
    return cache


@pytest.fixture(scope="session")
def shared_verdicts(shared_cache: Path) -> VerdictCache:
    """The session's verdict store: the static checks of a Dockerfile any test or compat run already made."""
    return VerdictCache.in_cache_dir(shared_cache)


@pytest.fixture(scope="session")
def bundle_cache(bundle: Path, shared_cache: Path) -> UpstreamCache:
    return UpstreamCache(shared_cache, UpstreamSource.parse(str(bundle)))


@pytest.fixture(scope="session")
def compat_all(bundle: Path, shared_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> CompatRun:
    """compat over every pin with the JSON and JUnit reports, run once: several tests read the same run."""
    out = tmp_path_factory.mktemp("compat-all")
    report, junit = out / "compat.json", out / "compat.xml"
    argv = ["compat", "--upstream", str(bundle), "--cache-dir", str(shared_cache)]
    code = main([*argv, "--quiet", "--output", str(report), "--junit", str(junit)])
    return CompatRun(code=code, document=json.loads(report.read_text()), junit=junit.read_bytes())


@pytest.fixture(scope="session")
def dockerfile_texts(bundle_cache: UpstreamCache, pins: Pins) -> DockerfileTexts:
    """(pristine, patched) Dockerfile text of a tag, read from the cache and patched by harness.patch.apply
    with the series' variant for the tag."""
    made: dict[str, tuple[str, str]] = {}

    def get(tag: str) -> tuple[str, str]:
        if tag not in made:
            pristine = bundle_cache.read_blob(bundle_cache.resolve(tag).dockerfile_blob)
            patch = Patch.load(pins.series.choose(tag).variant.patch)
            patched = patched_contents(patch, {DOCKERFILE: pristine})[DOCKERFILE]
            made[tag] = (pristine.decode(), patched.decode())
        return made[tag]

    return get


@pytest.fixture
def checkout(bundle_cache: UpstreamCache, tmp_path: Path) -> Iterator[CheckoutFactory]:
    """Check a tag of the bundle out into this test's own directory (never patch in the cache)."""
    made: list[Path] = []

    def make(ref: str) -> Path:
        resolved: ResolvedRef = bundle_cache.resolve(ref)
        dest = tmp_path / f"checkout-{ref}"
        bundle_cache.checkout(resolved, dest)
        made.append(dest)
        return dest

    yield make
    for dest in made:
        bundle_cache.remove_checkout(dest)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """A git repository made by the test, with the given files committed."""

    def make(files: dict[str, bytes], name: str = "repo") -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "--quiet")
        git(repo, "config", "user.email", "test@localhost")
        git(repo, "config", "user.name", "test")
        git(repo, "config", "core.autocrlf", "false")
        for rel, data in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_bytes(data)
        git(repo, "add", "-A")
        git(repo, "commit", "--quiet", "-m", "upstream")
        return repo

    return make


@pytest.fixture
def upstream_with_a_latin1_release(bundle_cache: UpstreamCache, make_repo: Callable[..., Path]) -> Path:
    """An upstream whose v1.17.0 Dockerfile has a Latin-1 comment; v1.16.0 is upstream's own."""
    older = bundle_cache.read_blob(bundle_cache.resolve("v1.16.0").dockerfile_blob)
    newer = bundle_cache.read_blob(bundle_cache.resolve("v1.17.0").dockerfile_blob) + b"# caf\xe9\n"
    repo = make_repo({DOCKERFILE: older}, name="upstream")
    git(repo, "tag", "v1.16.0")
    (repo / DOCKERFILE).write_bytes(newer)
    git(repo, "commit", "--quiet", "-am", "a Latin-1 comment")
    git(repo, "tag", "v1.17.0")
    return repo
