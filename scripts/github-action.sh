#!/usr/bin/env bash
# The GitHub Action (action.yml): install the harness at the action's own ref, run it in the caller's
# repository, and leave JUnit, Markdown and JSON in the reports directory; the job summary and the
# ::error annotations come from mas-harness itself. The step's outputs: exit-code, and from the check's JSON
# report ref (the upstream ref checked) and fits. Runs with the environment GitHub gives a step.
set -uo pipefail

: "${GITHUB_ACTION_PATH:?run this as a GitHub Action step (GITHUB_ACTION_PATH is not set)}"
python=${MAS_HARNESS_PYTHON:-python3}
reports=${MAS_HARNESS_REPORTS:-mas-harness-reports}
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mas-harness-venv"

# A build needs the build extra (the Docker, sampling and plotting libraries); a check does not.
spec="$GITHUB_ACTION_PATH"
if [ -n "${MAS_HARNESS_BUILD:-}" ]; then
  spec="${GITHUB_ACTION_PATH}[build]"
fi
if [ ! -x "$venv/bin/mas-harness" ] || [ -n "${MAS_HARNESS_BUILD:-}" ]; then
  [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" || exit 3
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$spec" || exit 3
fi

mkdir -p "$reports"
# The outputs are read from this run's report: one a run before left (a self-hosted runner, the action used
# twice in a job) must not stand for this one when this one writes none (bad input is refused before any work).
rm -f "$reports/mas-harness.json" "$reports/mas-harness.xml" "$reports/mas-harness.md"
if [ -n "${MAS_HARNESS_BUMP_TO:-}" ]; then
  command=(compat --bump-to "$MAS_HARNESS_BUMP_TO")
else
  command=(verify)
fi
# Word splitting of the extra arguments is what the `args` input promises.
# shellcheck disable=SC2206
extra=(${MAS_HARNESS_ARGS:-})

"$venv/bin/mas-harness" "${command[@]}" "${extra[@]}" \
  --output "$reports/mas-harness.json" \
  --junit "$reports/mas-harness.xml" \
  --markdown "$reports/mas-harness.md" \
  --github-annotations
code=$?

# ref: what the check checked, as the report names it (the recorded commit's tag, the bump-to ref as given, the
# tag `latest` stood for). fits: whether the patch fits it, true or false, when the check gave a verdict (exit 0
# or 1); empty when nothing was checked (bad input, a missing tool, an internal error).
ref=""
fits=""
if [ -f "$reports/mas-harness.json" ]; then
  # One line: the report's `ok`, then the ref it checked (a ref has no whitespace: an output is one line).
  facts=$("$venv/bin/python" - "$reports/mas-harness.json" <<'PY'
import json
import sys

with open(sys.argv[1], encoding="utf-8") as report:
    document = json.load(report)
checked = (document.get("refs") or [{}])[0]
ok = document.get("ok") is True
if (document.get("superproject") or {}).get("up_to_date"):
    # Nothing to bump (exit 0) says nothing of the patch: whether it fits the newest release, recorded already.
    ok = ok and checked.get("ok") is True
print(str(ok).lower(), "".join(str(checked.get("ref") or "").split()))
PY
  ) || facts=""
  read -r ok ref <<<"$facts"
  if [ "$code" = 0 ] || [ "$code" = 1 ]; then
    fits=$ok
  fi
fi

if [ -n "${MAS_HARNESS_BUILD:-}" ]; then
  builder=()
  if [ -n "${MAS_HARNESS_BUILDER:-}" ]; then
    builder=(--builder "$MAS_HARNESS_BUILDER")
  fi
  # shellcheck disable=SC2206
  build_extra=(${MAS_HARNESS_BUILD_ARGS:-})
  "$venv/bin/mas-harness" build --ref "$MAS_HARNESS_BUILD" --stage final "${builder[@]}" "${build_extra[@]}" \
    --report-dir "$reports/build" \
    --output "$reports/mas-harness-build.json" \
    --junit "$reports/mas-harness-build.xml" \
    --markdown "$reports/mas-harness-build.md"
  built=$?
  # The check's verdict comes first: a build cannot make a patch that does not fit pass.
  if [ "$code" = 0 ]; then
    code=$built
  fi
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "exit-code=$code"
    echo "ref=$ref"
    echo "fits=$fits"
  } >>"$GITHUB_OUTPUT"
fi
exit "$code"
