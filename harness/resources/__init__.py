"""The data the harness ships: pins, the patch series and its variants, the stand-in source tree, the engine installer,
the build traces `advise` reads.

They live here, under `harness/resources/`, one copy each in the repository, so that an editable
install reads the same files as a wheel. `pins.toml` and `patches/` stay at the top of the repository,
where users look for them; `pins.toml` and `patches` here are symbolic links to them, which hatchling
follows, so a wheel carries the files themselves. They are read through `importlib.resources`, as
pre-commit reads its own resources.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from harness.errors import EnvironmentProblem

PINS_FILE = "pins.toml"
PATCHES = "patches"
STANDIN = "standin"
STANDIN_STAGES = "standin-stages"
ENGINE_INSTALLER = "install-docker-engine.sh"
TRACES = "traces"


def data_dir() -> Path:
    """The directory holding the shipped data, as files on disk (the pins name patches by relative path)."""
    found = files(__name__)
    if not isinstance(found, Path) or not (found / PINS_FILE).is_file():
        raise EnvironmentProblem(
            f"the harness's data files are missing from its installation ({found}/{PINS_FILE}); "
            "reinstall it from a wheel or an sdist: pip install --force-reinstall mas-patch-harness"
        )
    return found


def pins_file() -> Path:
    return data_dir() / PINS_FILE


def patches_dir() -> Path:
    return data_dir() / PATCHES


def standin_tree() -> Path:
    """A test double shaped like MAS (see its README): a tiny Cargo workspace, the default build context."""
    return data_dir() / STANDIN


def standin_stages() -> Path:
    """Test doubles of what the `frontend` and `policy` stages leave (see its README), one directory each."""
    return data_dir() / STANDIN_STAGES


def engine_installer() -> Path:
    return data_dir() / ENGINE_INSTALLER


def traces_dir() -> Path:
    """Build traces of pinned releases, taken here from full-source builds, that `advise` reads (see its README)."""
    return data_dir() / TRACES
