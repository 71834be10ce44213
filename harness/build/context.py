"""The build context: the stand-in source tree, a full checkout of the ref, or a source tree the user names."""

from __future__ import annotations

from pathlib import Path

from harness.errors import BadInput
from harness.upstream.cache import DOCKERFILE, ResolvedRef, UpstreamCache


def build_context(source: str, *, cache: UpstreamCache, resolved: ResolvedRef, work_dir: Path, standin: Path) -> Path:
    """`standin` (the test double), `full` (a full checkout of the ref, made once) or a source tree's path."""
    if source == "standin":
        return standin
    if source == "full":
        context = work_dir / f"full-{resolved.commit[:12]}"
        if not (context / DOCKERFILE).is_file():
            cache.checkout(resolved, context)
        return context
    context = Path(source)
    if not context.is_dir():
        raise BadInput(f"--source {source}: not standin, full, or a directory")
    return context
