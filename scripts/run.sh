#!/usr/bin/env bash
# Set up a fresh machine and run one nox session: `scripts/run.sh verify` or `scripts/run.sh tests`.
# Idempotent: what is already installed is left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

session=${1:?usage: scripts/run.sh SESSION [-- pytest args]}
shift

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "scripts/run.sh: Python 3.11 or newer is needed ($python is $("$python" --version 2>&1))" >&2; exit 2; }
"$python" -m pip install --quiet --upgrade 'nox>=2024.10'

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # The patch's RUN scripts are executed under dash, as /bin/sh is in the builder image.
  command -v dash >/dev/null || apt-get install -y -q dash
  # Upstream's build script runs confined: bubblewrap is one of the two ways the tests try (util-linux the other).
  command -v bwrap >/dev/null || apt-get install -y -q bubblewrap
  case "$session" in
    # These sessions build images: a BuildKit-capable engine (and debootstrap) must run.
    tests|verify|integration|profile) bash harness/resources/install-docker-engine.sh ;;
  esac
fi

exec "$python" -m nox -s "$session" "$@"
