"""Verify the build-knobs patch on Matrix Authentication Service's Dockerfile: apply, check, build, bump."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mas-patch-harness")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
