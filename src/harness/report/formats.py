"""Results for CI: JUnit XML (one test case per ref and check), Markdown, and GitHub's step summary.

Every command's results are first turned into `Case`s, so that one writer serves compat, the
static checks and the profiles; the converters read the commands' JSON shapes, which are the
stable interface (the same files `verify` writes and `summary` reads).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


@dataclass(frozen=True, kw_only=True)
class Case:
    suite: str
    """JUnit classname, e.g. `compat` or `static.v1.17.0`."""
    name: str
    ok: bool
    message: str
    detail: str = ""
    seconds: float = 0.0


def junit_xml(suite_name: str, cases: Sequence[Case]) -> bytes:
    failures = sum(1 for case in cases if not case.ok)
    root = ElementTree.Element("testsuites", name="mas-harness", tests=str(len(cases)), failures=str(failures))
    suite = ElementTree.SubElement(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(cases)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{sum(c.seconds for c in cases):.3f}",
    )
    for case in cases:
        element = ElementTree.SubElement(
            suite, "testcase", classname=case.suite, name=case.name, time=f"{case.seconds:.3f}"
        )
        if not case.ok:
            failure = ElementTree.SubElement(element, "failure", message=case.message)
            failure.text = case.detail or case.message
        elif case.detail:
            ElementTree.SubElement(element, "system-out").text = case.detail
    ElementTree.indent(root)
    data: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_cases(title: str, cases: Sequence[Case]) -> str:
    failed = [case for case in cases if not case.ok]
    verdict = "all ok" if not failed else f"{len(failed)} of {len(cases)} NOT OK"
    head = f"### {title}: {verdict}\n\n"
    rows = [(case.suite, case.name, "ok" if case.ok else "**NOT OK**", case.message) for case in cases]
    return head + markdown_table(("suite", "case", "verdict", "detail"), rows)


def publish(
    *,
    title: str,
    cases: Sequence[Case],
    junit: Path | None,
    markdown: Path | None,
    env: Mapping[str, str] | None = None,
    extra_markdown: str = "",
) -> str:
    """Write the JUnit and Markdown files asked for; append the Markdown to GitHub's step summary when set."""
    text = markdown_cases(title, cases) + (f"\n{extra_markdown}" if extra_markdown else "")
    if junit:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_bytes(junit_xml(title, cases))
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(text)
    append_step_summary(text, env if env is not None else os.environ)
    return text


def append_step_summary(markdown: str, env: Mapping[str, str]) -> None:
    """GitHub Actions shows what is appended to $GITHUB_STEP_SUMMARY on the run's page."""
    summary = env.get(STEP_SUMMARY)
    if summary:
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(markdown + "\n")


# -- converters from the commands' JSON ---------------------------------------------------------


def compat_cases(results: Sequence[Mapping[str, object]]) -> list[Case]:
    """Per ref: the patch's state against the pin, the static checks of the patched file, post-image drift."""
    cases = []
    for result in results:
        ref = str(result["ref"])
        hunks = result.get("hunks") or []
        assert isinstance(hunks, list)
        variant = result.get("variant")
        detail_lines = [
            f"patch {result.get('patch')}",
            f"state {result.get('state')} (expected {result.get('expected')})",
        ]
        if isinstance(variant, dict):
            detail_lines.insert(0, f"variant {variant.get('name')}: {variant.get('reason')}")
        detail_lines += [_hunk_line(hunk) for hunk in hunks if isinstance(hunk, dict)]
        static = result.get("static")
        static_ok = not isinstance(static, dict) or bool(static.get("ok"))
        state_ok = bool(result["ok"]) or not static_ok  # a static failure alone is reported by its own case
        cases.append(
            Case(
                suite=f"compat.{ref}",
                name="state",
                ok=state_ok,
                message=str(result.get("reason") or result.get("state")),
                detail="\n".join(detail_lines),
            )
        )
        if isinstance(static, dict):
            failed = static.get("failed") or []
            cases.append(
                Case(
                    suite=f"compat.{ref}",
                    name="static checks",
                    ok=static_ok,
                    message=f"{static.get('checks')} checks" + (f", failing: {failed}" if failed else ", all hold"),
                )
            )
        drift = result.get("drift")
        if isinstance(drift, dict):
            differs = bool(drift.get("differs"))
            message = (
                f"the patched Dockerfile differs from {drift.get('pin')}'s ({drift.get('compared')}): "
                f"{drift.get('changed_lines')} line(s)"
                if differs
                else f"the patched Dockerfile is {drift.get('pin')}'s ({drift.get('compared')})"
            )
            # Drift from a nearby pin is news, not a failure; from the ref's own lock, `ok` already fails.
            cases.append(
                Case(
                    suite=f"compat.{ref}",
                    name="post-image",
                    ok=True,
                    message=message,
                    detail=str(drift.get("diff") or ""),
                )
            )
    return cases


def _hunk_line(hunk: Mapping[str, object]) -> str:
    where = f"hunk #{hunk.get('index')} {hunk.get('header', '')}".strip()
    if hunk.get("status") == "conflict":
        return (
            f"{where}: conflict at line {hunk.get('mismatch_line')}: found {hunk.get('mismatch_found')!r}, "
            f"expected {hunk.get('mismatch_expected')!r}"
        )
    return f"{where}: {hunk.get('status')} at line {hunk.get('found_at')} (offset {hunk.get('offset')})"


def static_cases(results: Sequence[Mapping[str, object]]) -> list[Case]:
    cases = []
    for result in results:
        findings = result.get("findings") or []
        assert isinstance(findings, list)
        totals = Counter(str(finding["check"]) for finding in findings)
        seen: Counter[str] = Counter()
        for finding in findings:
            check = str(finding["check"])
            seen[check] += 1
            line = f" (line {finding['line']})" if finding.get("line") else ""
            cases.append(
                Case(
                    suite=f"static.{result['ref']}",
                    # A check makes one finding per line or scenario; JUnit readers merge equal names.
                    name=check if totals[check] == 1 else f"{check} [{seen[check]}/{totals[check]}]",
                    ok=bool(finding["ok"]),
                    message=f"{finding['message']}{line}",
                )
            )
    return cases


def profile_cases(report: Mapping[str, object]) -> list[Case]:
    profiles = report.get("profiles") or []
    assert isinstance(profiles, list)
    return [
        Case(
            suite=f"profile.{profile['name']}",
            name=str(check["name"]),
            ok=bool(check["ok"]),
            message=str(check["detail"]),
            seconds=float(profile.get("wall_seconds") or 0) if index == 0 else 0.0,
        )
        for profile in profiles
        for index, check in enumerate(profile.get("checks") or [])
    ]
