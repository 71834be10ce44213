"""Verify the build-knobs patch on Matrix Authentication Service's Dockerfile: apply, check, build, bump."""

__version__ = "0.2.0"
"""The one place the version is written: the build reads it from here (pyproject's [tool.hatch.version]), and
reading it costs nothing at start-up, where asking the installed metadata takes longer than the rest of `status`."""
