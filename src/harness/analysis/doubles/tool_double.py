"""Test double for `cargo` and `rustup`: records each call, builds nothing.

Run as `python tool_double.py <tool> <args...>` (the harness writes a one-line
`cargo`/`rustup` shell wrapper doing that). Each call appends one JSON line
{"tool", "argv", "env", "cwd"} to the file named by $HARNESS_DOUBLE_LOG. The
`cargo` double, asked to `build` (or `auditable build`), creates
target/<triple>/release/<bin> for each --target, holding the triple, so that a
later `mv` can be traced back to the target it was built for.

Standalone on purpose (standard library only, no harness import): it runs in a
child process with an environment the harness does not control.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Variables the harness sets to run the script; not part of what BuildKit gives it.
HARNESS_VARS = ("HARNESS_DOUBLE_LOG", "PATH", "PWD", "OLDPWD", "SHLVL", "_")


def _targets_and_bin(args: list[str]) -> tuple[list[str], str]:
    targets: list[str] = []
    binary = "mas-cli"
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--target" and i + 1 < len(args):
            targets.append(args[i + 1])
            i += 2
            continue
        if a == "--bin" and i + 1 < len(args):
            binary = args[i + 1]
            i += 2
            continue
        if a.startswith("--target="):
            targets.append(a.split("=", 1)[1])
        elif a.startswith("--bin="):
            binary = a.split("=", 1)[1]
        i += 1
    return targets, binary


def main(argv: list[str]) -> int:
    tool, args = argv[0], argv[1:]
    record = {
        "tool": tool,
        "argv": args,
        "env": {k: v for k, v in os.environ.items() if k not in HARNESS_VARS},
        "cwd": str(Path.cwd()),
    }
    with Path(os.environ["HARNESS_DOUBLE_LOG"]).open("a", encoding="utf-8") as log:
        log.write(json.dumps(record, sort_keys=True) + "\n")
    words = [a for a in args if not a.startswith("-")]
    if tool == "cargo" and (words[:2] == ["auditable", "build"] or words[:1] == ["build"]):
        targets, binary = _targets_and_bin(args)
        for triple in targets:
            out = Path("target") / triple / "release" / binary
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(f"{binary} built for {triple}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
