"""One module per command: a function of typed keyword arguments that calls the layer below and returns an Outcome."""

BUILD_EXTRA = (
    "pip install 'mas-patch-harness[build]' (pipx: pipx inject mas-patch-harness python-on-whales "
    "testcontainers psutil matplotlib)"
)
"""How to install the `build` extra, for a command that finds part of it missing."""
