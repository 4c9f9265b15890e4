#!/usr/bin/env bash
# lint.sh: static analysis for Skein. Run from anywhere: bash scripts/lint.sh
#
#   1. staticcheck ./...            (honnef.co/go/tools, all default checks)
#   2. golangci-lint run ./...      (v2, with the checked-in .golangci.yml)
#
# Both are pinned below. Each is installed with `go install ...@version` into
# LINTBIN (default: .lintbin/ in the repository, ignored by git) only when it
# is missing, was built from another version, or was built by another Go
# than the one on PATH (a linter must be built by a Go at least as new as the
# code it loads). The first run needs the Go module proxy and takes a few CPU
# minutes; later runs start at once.
#
# Without arguments it checks ./... and the bench module (bench/, a module of
# its own); arguments replace both with the packages to check.
#
# Env: LINTBIN (where the binaries live), LINT_INSTALL_ONLY=1 (install, do not
# run).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

STATICCHECK_MOD=honnef.co/go/tools
STATICCHECK_PKG=$STATICCHECK_MOD/cmd/staticcheck
STATICCHECK_VERSION=v0.8.2
GOLANGCI_MOD=github.com/golangci/golangci-lint/v2
GOLANGCI_PKG=$GOLANGCI_MOD/cmd/golangci-lint
GOLANGCI_VERSION=v2.15.0

LINTBIN=${LINTBIN:-$root/.lintbin}
gover=$(go env GOVERSION)

say() { echo "lint: $*" >&2; }
die() { echo "lint: FAILED: $*" >&2; exit 1; }

# built BIN MOD: prints "<module version> <go version>" of the binary BIN as
# go version -m reads them from its build info, or nothing.
built() {
  [ -x "$1" ] || return 0
  go version -m "$1" 2>/dev/null | awk -v mod="$2" '
    NR == 1 { gov = $2 }
    ($1 == "mod" || $1 == "dep") && $2 == mod { ver = $3 }
    END { if (ver != "") print ver, gov }'
}

# ensure NAME PKG MOD VERSION: installs PKG@VERSION as LINTBIN/NAME unless
# the binary there already is that version, built by this Go.
ensure() {
  local name=$1 pkg=$2 mod=$3 version=$4 have
  have=$(built "$LINTBIN/$name" "$mod")
  if [ "$have" = "$version $gover" ]; then
    return 0
  fi
  say "installing $pkg@$version with $gover into $LINTBIN (have: ${have:-none})"
  mkdir -p "$LINTBIN"
  GOBIN=$LINTBIN go install "$pkg@$version" || die "go install $pkg@$version"
  have=$(built "$LINTBIN/$name" "$mod")
  [ "$have" = "$version $gover" ] || die "$LINTBIN/$name reports '$have', want '$version $gover'"
}

ensure staticcheck "$STATICCHECK_PKG" "$STATICCHECK_MOD" "$STATICCHECK_VERSION"
ensure golangci-lint "$GOLANGCI_PKG" "$GOLANGCI_MOD" "$GOLANGCI_VERSION"
if [ "${LINT_INSTALL_ONLY:-0}" = 1 ]; then
  exit 0
fi

status=0
# lint DIR PKG...: both linters on PKG... from DIR, with the root config.
lint() {
  local dir=$1
  shift
  echo "-- staticcheck $STATICCHECK_VERSION ($dir)"
  (cd "$dir" && "$LINTBIN/staticcheck" "$@") || status=1
  echo "-- golangci-lint $GOLANGCI_VERSION ($dir, .golangci.yml)"
  (cd "$dir" && "$LINTBIN/golangci-lint" run --config "$root/.golangci.yml" "$@") || status=1
}
if [ $# -gt 0 ]; then
  lint . "$@"
else
  lint . ./...
  lint bench ./...
fi
[ $status = 0 ] || die "findings above (fix them; a //nolint:name needs a reason after it)"
echo "lint: clean"
