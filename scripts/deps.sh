#!/usr/bin/env bash
# deps.sh: install what a fresh Debian 12 (or Ubuntu) machine lacks to build
# and test Skein. Idempotent and quiet: prints nothing when all is there.
# When something cannot be installed (no root, no sudo, not Debian), it says
# exactly what to install and exits 1.
#
# Sections:
#   1. Go >= 1.25 (checked only: install it from go.dev, see the message)
#   2. a C compiler (go test -race needs cgo)
#   3. Ebitengine runtime libraries, for demo/arena, and Xvfb for its window
#      test, via ../shared/scripts/ebiten-deps.sh when present
#   4. netlab tools (real-kernel NAT tests), only with SKEIN_NETLAB=1
#
# Usage: deps.sh          everything the tests need (sections 1-4)
#        deps.sh --demo   only what playing demo/arena needs (sections 1 and 3,
#                         runtime libraries only: no Xvfb, no C compiler)
#
# Env: SKEIN_SHARED (default: ../shared beside the repository),
#      SKEIN_NETLAB=1 (also install netlab's tools), CI (set by CI runners).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SKEIN_SHARED:-$(dirname "$root")/shared}

say() { echo "deps: $*" >&2; }
die() { echo "deps: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

# apt_install PKG...: install the Debian packages that are not installed yet.
apt_install() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
  done
  [ ${#missing[@]} = 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo; as root run: apt-get install -y ${missing[*]}"
    sudo="sudo -n"
  fi
  say "installing ${missing[*]} with apt-get"
  local aptget=($sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -qq --no-install-recommends)
  if ! "${aptget[@]}" install "${missing[@]}" >/dev/null 2>&1; then
    # Stale or missing package lists are the usual cause: update once, retry.
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get -qq update >/dev/null 2>&1 || true
    "${aptget[@]}" install "${missing[@]}" >/dev/null ||
      die "apt-get install ${missing[*]} failed; run it yourself: apt-get install -y ${missing[*]}"
  fi
}

is_debian() { command -v dpkg-query >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; }

# ---------------------------------------------------------------- 1. Go

deps_go() {
  local arch
  arch=$(uname -m)
  case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
  local how="install Go 1.25 or newer from https://go.dev/dl/ , for example:
    curl -fsSL https://go.dev/dl/go1.26.8.linux-$arch.tar.gz | sudo tar -C /usr/local -xz
    export PATH=/usr/local/go/bin:\$PATH
  (Debian 12's golang package is too old.)"
  command -v go >/dev/null 2>&1 || die "go is not in PATH; $how"
  local v
  # Run in the repository so that go.mod's toolchain selection applies.
  v=$(cd "$root" && go env GOVERSION 2>/dev/null) || die "'go env GOVERSION' failed; $how"
  if [[ $v =~ ^go([0-9]+)\.([0-9]+) ]]; then
    local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
    if ((major < 1 || (major == 1 && minor < 25))); then
      die "found $v, need Go >= 1.25; $how"
    fi
  fi # anything else (a devel build) is taken as new enough
}

# ---------------------------------------------------------------- 2. C compiler

deps_cc() {
  if is_debian; then
    apt_install gcc libc6-dev
    return 0
  fi
  command -v gcc >/dev/null 2>&1 ||
    die "go test -race needs a C compiler: install gcc and the C library headers (Debian: apt-get install gcc libc6-dev)"
}

# ---------------------------------------------------------------- 3. Ebitengine

deps_ebiten() {
  local script=$shared/scripts/ebiten-deps.sh
  if [ ! -f "$script" ]; then
    say "note: $script not found; installing only Ebitengine's runtime libraries (the window test needs Xvfb and skips without it)"
    deps_play
    return 0
  fi
  # Default flags: runtime libraries plus Xvfb and the screenshot tools.
  bash "$script"
}

# ---------------------------------------------------------------- 4. netlab

deps_netlab() {
  [ "${SKEIN_NETLAB:-0}" = 1 ] || return 0
  if [ ! -x "$shared/netlab/netlab" ]; then
    say "note: $shared/netlab/netlab not found; SKEIN_NETLAB=1 ignored"
    return 0
  fi
  # The tools 'netlab up' needs (it would apt-get them itself, as root), and
  # the port-mapping daemon 'netlab upnp' runs on a router (engine/portmap's
  # and engine/sync's port-mapping tests).
  is_debian || die "netlab needs: iproute2 nftables iptables conntrack iputils-ping miniupnpd-nftables"
  apt_install iproute2 nftables iptables conntrack iputils-ping miniupnpd-nftables
}

# The libraries Ebitengine v2.10 dlopens on Linux (X11, GL, ALSA): playing
# needs nothing else, not even a C compiler. The same list as
# ../shared/scripts/ebiten-deps.sh, so a player's machine needs no ../shared.
EBITEN_RUNTIME="libgl1 libgl1-mesa-dri libx11-6 libxcursor1 libxext6 libxi6 libxinerama1 libxrandr2 libxrender1"

deps_play() {
  [ "$(uname -s)" = Linux ] || return 0 # macOS and Windows need nothing
  if ! is_debian; then
    say "note: not Debian/Ubuntu; the game needs the X11, Xcursor, Xi, Xinerama, Xrandr, Xrender and GL (Mesa) libraries, and ALSA for sound"
    return 0
  fi
  local audio=libasound2
  # Debian 13 and Ubuntu 24.04 renamed it.
  if ! apt-cache show libasound2 >/dev/null 2>&1 && apt-cache show libasound2t64 >/dev/null 2>&1; then
    audio=libasound2t64
  fi
  # shellcheck disable=SC2086
  apt_install $EBITEN_RUNTIME $audio
}

case "${1:-}" in
  --demo)
    deps_go
    deps_play
    ;;
  "")
    deps_go
    deps_cc
    deps_ebiten
    deps_netlab
    ;;
  *) die "unknown option: $1 (deps.sh [--demo])" ;;
esac
