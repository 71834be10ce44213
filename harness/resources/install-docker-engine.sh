#!/usr/bin/env bash
# Install and start a BuildKit-capable Docker engine on Debian 12, idempotently, with buildx and compose.
#
# Debian 12's own docker.io (20.10) rejects `RUN --network=...` and has no buildx, so the
# engine comes from trixie, pinned low so that nothing else (libc6, runc) moves to trixie.
# Compose v2 comes from trixie too (docker-compose 2.26, the `docker compose` CLI plugin;
# Debian 12's docker-compose is the old Python v1); the integration tests run services with it.
# See /work/shared/notes/docker-engine-on-debian12.md for the facts behind each step.
set -euo pipefail

readonly MIN_SERVER_MAJOR=23
readonly LOG_DIR="${MAS_HARNESS_LOG_DIR:-/var/log}"
readonly DOCKERD_LOG="${LOG_DIR}/mas-harness-dockerd.log"
readonly START_TIMEOUT=60
readonly TRIXIE_LIST=/etc/apt/sources.list.d/trixie.list
readonly TRIXIE_PREF=/etc/apt/preferences.d/trixie.pref

say() { printf 'install-docker-engine: %s\n' "$*"; }
die() { printf 'install-docker-engine: error: %s\n' "$*" >&2; exit 1; }

server_version() {
    docker version --format '{{.Server.Version}}' 2>/dev/null
}

engine_is_ready() {
    local version major
    docker info >/dev/null 2>&1 || return 1
    version="$(server_version)" || return 1
    major="${version%%.*}"
    [[ "$major" =~ ^[0-9]+$ ]] && ((major >= MIN_SERVER_MAJOR)) || return 1
    docker buildx version >/dev/null 2>&1 || return 1
    compose_is_v2
}

compose_is_v2() {
    local version
    version="$(docker compose version --short 2>/dev/null)" || return 1
    [[ "${version#v}" =~ ^2\. ]]
}

print_versions() {
    say "engine $(server_version), $(docker buildx version), compose $(docker compose version --short)"
}

write_if_changed() {
    # Rewriting identical files would make apt-get update look necessary on every run.
    local path="$1" content="$2"
    if [[ ! -f "$path" ]] || [[ "$(cat "$path")" != "$content" ]]; then
        printf '%s\n' "$content" >"$path"
        return 0
    fi
    return 1
}

install_packages() {
    [[ "$(id -u)" -eq 0 ]] || die "must run as root to install packages"
    command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian only"

    write_if_changed "$TRIXIE_LIST" \
        'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' || true
    # Without this pin trixie's runc wants libc6 >= 2.38 and apt would upgrade libc.
    write_if_changed "$TRIXIE_PREF" 'Package: *
Pin: release n=trixie
Pin-Priority: 100' || true

    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends \
        docker.io/trixie containerd/trixie docker-buildx/trixie docker-compose/trixie \
        debootstrap

    # The pin is the only thing that keeps these at bookworm; check it held.
    local libc_release runc_release
    libc_release="$(dpkg-query -W -f '${Version}' libc6)"
    runc_release="$(dpkg-query -W -f '${Version}' runc)"
    case "$libc_release" in 2.36*) ;; *) die "libc6 moved to $libc_release; expected Debian 12's 2.36" ;; esac
    say "installed; libc6 $libc_release, runc $runc_release kept from Debian 12"
}

start_daemon() {
    if pgrep -x dockerd >/dev/null; then
        say "dockerd already running (pid $(pgrep -x dockerd | head -n1))"
    else
        command -v dockerd >/dev/null || die "dockerd not found after install"
        mkdir -p "$LOG_DIR"
        say "starting dockerd, log in $DOCKERD_LOG"
        # No init system on this machine: detach dockerd from this shell so it outlives it.
        nohup setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi

    local waited=0
    until docker info >/dev/null 2>&1; do
        ((waited < START_TIMEOUT)) || die "docker daemon did not answer within ${START_TIMEOUT}s; see $DOCKERD_LOG"
        sleep 1
        waited=$((waited + 1))
    done
}

main() {
    if engine_is_ready; then
        say "engine already ready, nothing to do"
        print_versions
        exit 0
    fi

    # The buildx and compose plugins come with the packages, so a running daemon without them still needs them.
    if ! command -v dockerd >/dev/null || ! docker buildx version >/dev/null 2>&1 \
        || ! compose_is_v2 || ! command -v debootstrap >/dev/null; then
        install_packages
    fi
    start_daemon

    engine_is_ready || die "engine answers but is not usable: server $(server_version || echo '?') (need >= ${MIN_SERVER_MAJOR}) with buildx and compose v2"
    print_versions
}

main "$@"
