#!/usr/bin/env bash
# The GitHub Action (action.yml): install the harness at the action's own ref, run it in the caller's
# repository, and leave JUnit, Markdown and JSON in the reports directory; the job summary and the
# ::error annotations come from mas-harness itself. Runs with the environment GitHub gives a step.
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
  echo "exit-code=$code" >>"$GITHUB_OUTPUT"
fi
exit "$code"
