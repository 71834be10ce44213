"""Test doubles for the tools a Dockerfile RUN script calls (cargo, rustup).

They are never run as part of a real build: the harness runs the cargo build
RUN script of the MAS Dockerfile with these first on PATH, to record what the
script asks of cargo and rustup without compiling anything. `tool_double.sh` is
the one double, installed under each tool's name (see harness.analysis.sandbox).
"""
