#!/usr/bin/env bash
# The GitHub Action (action.yml): install the harness at the action's own ref, run it in the caller's
# repository, and leave JUnit, Markdown and JSON in the reports directory; the job summary and the
# ::error annotations come from mas-harness itself. Runs with the environment GitHub gives a step.
set -uo pipefail

: "${GITHUB_ACTION_PATH:?run this as a GitHub Action step (GITHUB_ACTION_PATH is not set)}"
python=${MAS_HARNESS_PYTHON:-python3}
reports=${MAS_HARNESS_REPORTS:-mas-harness-reports}
venv="${RUNNER_TEMP:-${TMPDIR:-/tmp}}/mas-harness-venv"

if [ ! -x "$venv/bin/mas-harness" ]; then
  "$python" -m venv "$venv" || exit 3
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$GITHUB_ACTION_PATH" || exit 3
fi

mkdir -p "$reports"
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
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "exit-code=$code" >>"$GITHUB_OUTPUT"
fi
exit "$code"
