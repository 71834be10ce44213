"""The in-build trace: a RUSTC_WRAPPER (C, `context/rustc_wrapper.c`) the build copy compiles and runs cargo with.

The wrapper runs inside the build container, so it records the build wherever BuildKit runs
it, a remote builder too: every rustc invocation (and, through a shim it puts in place of each
compiled build script, every build-script run) as one JSON line appended to `records.jsonl`
under TRACE_DIR, a directory of the image's own layer (a cache mount would not be exported).
The stage TRACE_STAGE, added after the builder stage, holds those records alone, so that a
second `buildx build --target TRACE_STAGE --output type=local` (served from the layer cache)
brings them out. The wrapper's file is its own build context: nothing else of the package
goes to the builder. The names below are the wrapper's too (its #defines); a unit test holds
the two to each other.
"""

from __future__ import annotations

from pathlib import Path

SOURCE_CONTEXT = Path(__file__).parent / "context"
"""The directory BuildKit gets as the named context TRACER_CONTEXT: the wrapper's C source, alone."""
SOURCE_FILE = "rustc_wrapper.c"
TRACER_CONTEXT = "mas-harness-tracer"
"""The named build context (`--build-context`) that holds the wrapper's source."""
TRACE_STAGE = "mas-harness-trace"
"""The stage added to the build copy that holds the raw records alone."""
TRACER_HOME = "/mas-harness"
"""Where, in the builder stage, the wrapper is compiled."""
WRAPPER_PATH = f"{TRACER_HOME}/rustc-wrapper"
TRACE_DIR = f"{TRACER_HOME}/trace"
"""Where, in the builder stage's layer, the wrapper appends its records."""
TRACE_DIR_ENV = "MAS_HARNESS_TRACE_DIR"
RECORDS_FILE = "records.jsonl"
RUN_FLAG = "--mas-harness-run"
"""How the build-script shim calls the wrapper: `rustc-wrapper --mas-harness-run REAL ARGV0 ARGS...`."""
REAL_SUFFIX = ".mas-harness-real"
"""The build script rustc compiled, moved aside; the shim takes its name."""
