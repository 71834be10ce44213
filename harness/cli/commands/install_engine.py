from __future__ import annotations

import sys

from harness import resources
from harness.proc import run
from harness.results import Outcome, Result, status_of


def install_engine(*, print_only: bool) -> Outcome:
    """Run (or print) the engine installer this package ships: Debian 13's docker.io and buildx, pinned low."""
    script = resources.engine_installer()
    if print_only:
        sys.stdout.write(script.read_text(encoding="utf-8"))
        return Outcome(
            command="install-engine",
            title="install-engine",
            results=(Result(name="print", status=status_of(True), reason=f"printed {script}"),),
        )
    proc = run("bash", script, capture=False, check=False)
    ok = proc.returncode == 0
    return Outcome(
        command="install-engine",
        title="install-engine",
        results=(
            Result(
                name="install",
                status=status_of(ok),
                reason="a BuildKit-capable engine is installed and answers"
                if ok
                else f"the installer exited {proc.returncode}",
            ),
        ),
    )
