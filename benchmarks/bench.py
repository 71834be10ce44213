"""Benchmarks of the harness itself: how long users wait, and how much it fetches.

Measured (never asserted): `compat` over every pin with a cold and a warm cache, `compat`
of one ref not yet in the cache, the unit tier's wall time, and, given a full clone of
upstream to serve as the remote, the bytes a Dockerfile-only check fetches against a full
clone of the same remote. Each command runs as users run it, in a fresh interpreter.

    python benchmarks/bench.py --upstream BUNDLE_OR_URL [--full-clone PATH --full-clone-ref TAG] --output FILE
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, kw_only=True)
class Timing:
    name: str
    what: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _timed(argv: Sequence[str], *, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    # check=False: compat exits 1 when a pin's verdict changed, which is a result, not a failed benchmark.
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"bench: {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed


def _compat(upstream: str, cache: Path, *refs: str) -> list[str]:
    argv = [sys.executable, "-m", "harness", "compat", "--upstream", upstream, "--cache-dir", str(cache), "--json"]
    for ref in refs:
        argv += ["--ref", ref]
    return argv


def directory_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())


def time_compat(upstream: str, *, repeat: int, new_ref: str, scratch: Path) -> list[Timing]:
    cold, warm, one = [], [], []
    for attempt in range(repeat):
        cache = scratch / f"cache-{attempt}"
        cold.append(_timed(_compat(upstream, cache)))
        warm.append(_timed(_compat(upstream, cache)))
        fresh = scratch / f"cache-one-{attempt}"
        one.append(_timed(_compat(upstream, fresh, new_ref)))
        shutil.rmtree(cache)
        shutil.rmtree(fresh)
    return [
        Timing(name="compat-all-cold", what="compat over every pin, empty cache", seconds=cold),
        Timing(name="compat-all-warm", what="compat over every pin, cache already filled", seconds=warm),
        Timing(name="compat-one-new-ref", what=f"compat of one ref ({new_ref}), empty cache", seconds=one),
    ]


def time_unit_tier(*, repeat: int) -> Timing:
    argv = [sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"]
    return Timing(name="unit-tier", what="pytest tests/unit", seconds=[_timed(argv) for _ in range(repeat)])


def fetched_bytes(full_clone: Path, ref: str, scratch: Path) -> dict[str, object]:
    """Both fetch from the same local repository over the pack protocol (file://), as from a remote."""
    cache = scratch / "cache-bytes"
    _timed(_compat(str(full_clone), cache, ref))
    clone = scratch / "full-clone.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", "--no-local", f"file://{full_clone}", str(clone)], check=True)
    harness_bytes = directory_bytes(cache)
    clone_bytes = directory_bytes(clone)
    return {
        "ref": ref,
        "harness_cache_bytes": harness_bytes,
        "full_clone_bytes": clone_bytes,
        "ratio": round(harness_bytes / clone_bytes, 5) if clone_bytes else None,
    }


def render(timings: list[Timing], fetch: dict[str, object] | None) -> tuple[Table, str]:
    table = Table(title="harness benchmarks")
    for column in ("benchmark", "what", "median", "runs"):
        table.add_column(column)
    lines = ["| benchmark | what | median | runs |", "|---|---|---|---|"]
    for timing in timings:
        runs = ", ".join(f"{s:.2f}s" for s in timing.seconds)
        table.add_row(timing.name, timing.what, f"{timing.median:.2f}s", runs)
        lines.append(f"| {timing.name} | {timing.what} | {timing.median:.2f}s | {runs} |")
    if fetch:
        what = f"bytes for a Dockerfile-only check of {fetch['ref']} vs a full clone"
        value = f"{int(str(fetch['harness_cache_bytes'])):,} B vs {int(str(fetch['full_clone_bytes'])):,} B"
        table.add_row("fetch-bytes", what, value, f"ratio {fetch['ratio']}")
        lines.append(f"| fetch-bytes | {what} | {value} | ratio {fetch['ratio']} |")
    return table, "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upstream", required=True, help="the upstream compat runs against (bundle, path or URL)")
    parser.add_argument("--new-ref", default="v1.19.0", help="the ref for compat-one-new-ref (default v1.19.0)")
    parser.add_argument("--full-clone", type=Path, help="a full clone of upstream, the remote for fetch-bytes")
    parser.add_argument("--full-clone-ref", default="v1.17.0", help="the ref checked in fetch-bytes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "bench.json")
    args = parser.parse_args(argv)
    console = Console(width=160)
    with tempfile.TemporaryDirectory(prefix="mas-harness-bench-") as tmp:
        scratch = Path(tmp)
        timings = time_compat(args.upstream, repeat=args.repeat, new_ref=args.new_ref, scratch=scratch)
        timings.append(time_unit_tier(repeat=args.repeat))
        fetch = fetched_bytes(args.full_clone.resolve(), args.full_clone_ref, scratch) if args.full_clone else None
    table, markdown = render(timings, fetch)
    console.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
                "timings": [{**asdict(t), "median": round(t.median, 3)} for t in timings],
                "fetch": fetch,
            },
            indent=2,
        )
        + "\n"
    )
    args.output.with_suffix(".md").write_text(markdown)
    console.print(f"wrote {args.output} and {args.output.with_suffix('.md')}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
