"""Benchmarks of the harness itself: how long users wait, how much it recomputes, how much it fetches.

Measured (never asserted), each command run as users run it, in a fresh interpreter:

- `compat` over every pin with an empty cache (cold) and again with the cache filled (warm);
- `compat` over 300 refs of a generated bundle (300 point-release tags, each on a commit of its
  own with the tree of one of the 30 pinned releases: 9 distinct Dockerfiles), cold and warm;
- `compat` of one ref not yet in the cache;
- `check` then `compat` over every pin in one cache, as `nox -s verify` runs them: how many static
  verdicts each computes (the static work is done once);
- `mas-harness status` on a checkout, the whole process;
- the unit tier, as `nox -s unit` runs it (`-n auto`) and on one process;
- with `--full-clone`, the bytes a Dockerfile-only check fetches against a full clone.

Each figure is shown beside its target and beside main's before this work (OLD below, measured
on the same 2-CPU machine; `--old-python` measures main's harness again instead, given an
interpreter that has it installed).

    python benchmarks/bench.py --upstream BUNDLE [--old-python PATH] [--full-clone PATH] --output FILE
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
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
GENERATED_PER_PIN = 10
"""Point-release tags per pinned release in the generated bundle: 30 pins x 10 = 300 refs."""

# main before this work, 2 CPUs (docs/bench/bench.json as it was, and the brief's measurements);
# None where main was not measured.
OLD: dict[str, float | None] = {
    "compat-all-cold": 4.16,
    "compat-all-warm": 4.16,
    "compat-300-cold": None,
    "compat-300-warm": None,
    "compat-one-new-ref": 0.84,
    "verify-check-then-compat": None,
    "status": 0.39,
    "unit-tier-parallel": None,
    "unit-tier": 46.22,
}
TARGETS: dict[str, str] = {
    "compat-all-cold": "<= 2 s",
    "compat-all-warm": "<= 0.5 s",
    "compat-300-warm": "<= 1.5 s",
    "verify-check-then-compat": "static work once",
    "status": "<= 0.2 s",
    "unit-tier-parallel": "<= 20 s",
    "unit-tier": "<= 20 s",
}


@dataclass(frozen=True, kw_only=True)
class Timing:
    name: str
    what: str
    seconds: list[float]
    old: float | None = None
    """main's median before this work, when measured."""
    note: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def _timed(argv: Sequence[str], *, cwd: Path = ROOT) -> tuple[float, str]:
    """Seconds the command took, and its stdout."""
    started = time.perf_counter()
    # check=False: compat exits 1 when a pin's verdict changed, which is a result, not a failed benchmark.
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"bench: {' '.join(argv[:6])} ... exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return elapsed, done.stdout


def _harness(python: str, *args: str) -> list[str]:
    return [python, "-m", "harness", *args]


def _compat(python: str, upstream: str, cache: Path, *refs: str) -> list[str]:
    return _harness(python, "compat", "--upstream", upstream, "--cache-dir", str(cache), "--json", *refs)


def _verdicts(stdout: str) -> dict[str, object]:
    """The verdict counts of a compat or check run (the harness before stored verdicts reports none, and wrote a
    bare list as its JSON)."""
    document = json.loads(stdout)
    verdicts = document.get("verdicts") if isinstance(document, dict) else None
    return verdicts if isinstance(verdicts, dict) else {}


def directory_bytes(path: Path) -> int:
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())


def generate_bundle(upstream: str, scratch: Path) -> tuple[Path, list[str]]:
    """A bundle with every tag of `upstream` and GENERATED_PER_PIN point releases per tag (`vX.Y.Z.N`), each a commit
    of its own with the tree of `vX.Y.Z`; and the generated tag names."""
    repo = scratch / "generated.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", upstream, str(repo)], check=True, capture_output=True)
    listing = subprocess.run(
        ["git", "--git-dir", str(repo), "for-each-ref", "--format=%(refname:short) %(*objectname)%(objectname)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    bases = sorted(
        (line.split()[0], line.split()[1][:40]) for line in listing.splitlines() if line.startswith("v") and "." in line
    )
    script, names = [], []
    for tag, commit in bases:
        for n in range(1, GENERATED_PER_PIN + 1):
            name, message = f"{tag}.{n}", f"bench: {tag}.{n}\n"
            # No file changes: the commit keeps its parent's tree, so the Dockerfile is the pinned release's.
            script.append(
                f"commit refs/tags/{name}\ncommitter bench <bench@localhost> 0 +0000\n"
                f"data {len(message.encode())}\n{message}from {commit}\n\n"
            )
            names.append(name)
    subprocess.run(
        ["git", "--git-dir", str(repo), "fast-import", "--quiet"], input="".join(script), text=True, check=True
    )
    bundle = scratch / "generated.bundle"
    subprocess.run(["git", "--git-dir", str(repo), "bundle", "create", "--quiet", str(bundle), "--all"], check=True)
    return bundle, names


def time_compat(python: str, upstream: str, *, repeat: int, new_ref: str, scratch: Path) -> list[Timing]:
    cold, warm, one = [], [], []
    for attempt in range(repeat):
        cache = scratch / f"cache-{attempt}"
        cold.append(_timed(_compat(python, upstream, cache))[0])
        warm.append(_timed(_compat(python, upstream, cache))[0])
        fresh = scratch / f"cache-one-{attempt}"
        one.append(_timed(_compat(python, upstream, fresh, new_ref))[0])
        shutil.rmtree(cache)
        shutil.rmtree(fresh)
    return [
        Timing(name="compat-all-cold", what="compat over every pin (30), empty cache", seconds=cold),
        Timing(name="compat-all-warm", what="compat over every pin (30), cache already filled", seconds=warm),
        Timing(name="compat-one-new-ref", what=f"compat of one ref ({new_ref}), empty cache", seconds=one),
    ]


def time_many_refs(python: str, bundle: Path, refs: list[str], *, repeat: int, scratch: Path) -> list[Timing]:
    cold, warm = [], []
    for attempt in range(repeat):
        cache = scratch / f"cache-many-{attempt}"
        cold.append(_timed(_compat(python, str(bundle), cache, *refs))[0])
        warm.append(_timed(_compat(python, str(bundle), cache, *refs))[0])
        shutil.rmtree(cache)
    what = f"compat over {len(refs)} generated refs (9 distinct Dockerfiles)"
    return [
        Timing(name="compat-300-cold", what=f"{what}, empty cache", seconds=cold),
        Timing(name="compat-300-warm", what=f"{what}, cache already filled", seconds=warm),
    ]


def time_check_then_compat(python: str, upstream: str, *, repeat: int, scratch: Path) -> Timing:
    """`nox -s verify`'s static work: `check` over every pin expected to apply, then `compat` over every pin."""
    seconds: list[float] = []
    extra: dict[str, object] = {}
    for attempt in range(repeat):
        cache = scratch / f"cache-verify-{attempt}"
        where = ["--upstream", upstream, "--cache-dir", str(cache), "--json"]
        check_time, check_out = _timed(_harness(python, "check", *where))
        compat_time, compat_out = _timed(_harness(python, "compat", *where))
        seconds.append(check_time + compat_time)
        extra = {
            "check_seconds": round(check_time, 3),
            "compat_seconds": round(compat_time, 3),
            "check_verdicts": _verdicts(check_out),
            "compat_verdicts": _verdicts(compat_out),
        }
        shutil.rmtree(cache)
    check, compat = extra["check_verdicts"], extra["compat_verdicts"]
    note = (
        f"static verdicts computed: check {check.get('computed')}, then compat {compat.get('computed')} "
        f"(reused {compat.get('reused')})"
        if isinstance(check, dict) and isinstance(compat, dict) and check
        else "no verdict store: check and compat each compute every distinct Dockerfile's checks"
    )
    return Timing(
        name="verify-check-then-compat",
        what="check, then compat over every pin, one cache (as nox -s verify)",
        seconds=seconds,
        note=note,
        extra=extra,
    )


def time_status(python: str, upstream: str, *, repeat: int, scratch: Path) -> Timing:
    checkout = Path(tempfile.mkdtemp(prefix="status-checkout-", dir=scratch))
    subprocess.run(["git", "clone", "--quiet", upstream, str(checkout / "mas")], check=True, capture_output=True)
    checkout = checkout / "mas"
    subprocess.run(["git", "-C", str(checkout), "checkout", "--quiet", "v1.17.0"], check=True, capture_output=True)
    beside = Path(python).parent / "mas-harness"
    argv = [str(beside)] if beside.is_file() else _harness(python)
    _timed([*argv, "status", "--checkout", str(checkout)])  # the first run fills the OS's file cache
    runs = [_timed([*argv, "status", "--checkout", str(checkout)])[0] for _ in range(max(repeat, 5))]
    return Timing(name="status", what="mas-harness status on a checkout, the whole process", seconds=runs)


def time_unit_tier(*, repeat: int) -> list[Timing]:
    base = [sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider"]
    parallel = [_timed([*base, "-n", "auto"])[0] for _ in range(repeat)]
    serial = [_timed(base)[0] for _ in range(repeat)]
    return [
        Timing(name="unit-tier-parallel", what="pytest tests/unit -n auto (as nox -s unit)", seconds=parallel),
        Timing(name="unit-tier", what="pytest tests/unit, one process", seconds=serial),
    ]


def fetched_bytes(python: str, full_clone: Path, ref: str, scratch: Path) -> dict[str, object]:
    """Both fetch from the same local repository over the pack protocol (file://), as from a remote."""
    cache = scratch / "cache-bytes"
    _timed(_compat(python, str(full_clone), cache, ref))
    clone = scratch / "full-clone.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", "--no-local", f"file://{full_clone}", str(clone)], check=True)
    harness_bytes = directory_bytes(cache / "repos")
    clone_bytes = directory_bytes(clone)
    return {
        "ref": ref,
        "harness_cache_bytes": harness_bytes,
        "full_clone_bytes": clone_bytes,
        "ratio": round(harness_bytes / clone_bytes, 5) if clone_bytes else None,
    }


def with_old(timings: list[Timing], measured_old: dict[str, float]) -> list[Timing]:
    return [
        Timing(
            name=t.name,
            what=t.what,
            seconds=t.seconds,
            old=measured_old.get(t.name, OLD.get(t.name)),
            note=t.note,
            extra=t.extra,
        )
        for t in timings
    ]


def render(timings: list[Timing], fetch: dict[str, object] | None, *, busy: bool) -> tuple[Table, str]:
    table = Table(title="harness benchmarks" + (" (taken on a busy machine)" if busy else ""))
    columns = ("benchmark", "what", "target", "old (main)", "new (median)", "runs", "note")
    for column in columns:
        table.add_column(column)
    lines = [f"| {' | '.join(columns)} |", "|" + "---|" * len(columns)]
    for t in timings:
        runs = ", ".join(f"{s:.2f}s" for s in t.seconds)
        old = f"{t.old:.2f}s" if t.old is not None else "-"
        cells = (t.name, t.what, TARGETS.get(t.name, ""), old, f"{t.median:.2f}s", runs, t.note)
        table.add_row(*cells)
        lines.append(f"| {' | '.join(cells)} |")
    if fetch:
        what = f"bytes for a Dockerfile-only check of {fetch['ref']} vs a full clone"
        value = f"{int(str(fetch['harness_cache_bytes'])):,} B vs {int(str(fetch['full_clone_bytes'])):,} B"
        table.add_row("fetch-bytes", what, "", "", value, f"ratio {fetch['ratio']}", "")
        lines.append(f"| fetch-bytes | {what} |  |  | {value} | ratio {fetch['ratio']} |  |")
    if busy:
        lines.append("\nTaken while other work ran on the machine: the figures are upper bounds.")
    return table, "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upstream", required=True, help="the upstream compat runs against (a bundle or repository)")
    parser.add_argument("--new-ref", default="v1.19.0", help="the ref for compat-one-new-ref (default v1.19.0)")
    parser.add_argument("--old-python", help="an interpreter with main's harness installed: measure it too")
    parser.add_argument("--full-clone", type=Path, help="a full clone of upstream, the remote for fetch-bytes")
    parser.add_argument("--full-clone-ref", default="v1.17.0", help="the ref checked in fetch-bytes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-unit-tier", action="store_true", help="leave the unit tier out (it takes longest)")
    parser.add_argument("--busy", action="store_true", help="say in the report that other work ran meanwhile")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "bench" / "bench.json")
    args = parser.parse_args(argv)
    console = Console(width=200)
    python = sys.executable
    measured_old: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="mas-harness-bench-") as tmp:
        scratch = Path(tmp)
        bundle, generated = generate_bundle(args.upstream, scratch)
        timings = time_compat(python, args.upstream, repeat=args.repeat, new_ref=args.new_ref, scratch=scratch)
        timings += time_many_refs(python, bundle, generated, repeat=args.repeat, scratch=scratch)
        timings.append(time_check_then_compat(python, args.upstream, repeat=args.repeat, scratch=scratch))
        timings.append(time_status(python, args.upstream, repeat=args.repeat, scratch=scratch))
        if args.old_python:
            old = time_compat(args.old_python, args.upstream, repeat=1, new_ref=args.new_ref, scratch=scratch)
            old += time_many_refs(args.old_python, bundle, generated, repeat=1, scratch=scratch)
            old.append(time_check_then_compat(args.old_python, args.upstream, repeat=1, scratch=scratch))
            old.append(time_status(args.old_python, args.upstream, repeat=1, scratch=scratch))
            measured_old = {t.name: t.median for t in old}
        if not args.skip_unit_tier:
            timings += time_unit_tier(repeat=args.repeat)
        fetch = (
            fetched_bytes(python, args.full_clone.resolve(), args.full_clone_ref, scratch) if args.full_clone else None
        )
    timings = with_old(timings, measured_old)
    table, markdown = render(timings, fetch, busy=args.busy)
    console.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "busy": args.busy,
        "old": "main before this work" + (f", measured with {args.old_python}" if args.old_python else ", recorded"),
        "timings": [{**asdict(t), "median": round(t.median, 3), "target": TARGETS.get(t.name)} for t in timings],
        "fetch": fetch,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown)
    console.print(f"wrote {args.output} and {args.output.with_suffix('.md')}", highlight=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
