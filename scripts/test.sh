#!/usr/bin/env bash
# test.sh: THE test command for Skein. Run from anywhere: bash scripts/test.sh
#
#   0. scripts/deps.sh: Go >= 1.25 and the system packages (installs what is
#      missing, or says exactly what to install)
#   1. gofmt -l            (fails listing the unformatted files)
#   2. go vet ./... (and the bench module's), then scripts/lint.sh:
#      staticcheck and golangci-lint, pinned, installed on first use
#   3. go test -race -count=1 on ./engine/... and the server's load test,
#      then the engine's allocation tests without -race
#   4. go test -count=1 on every other package (tools, server, demo)
#   5. a short fuzz pass: each func Fuzz* for FUZZTIME
#
# Env: LINT=0 skips scripts/lint.sh; FUZZTIME (default 20000x: a count of executions) per fuzz target, every Fuzz function in the module;
# FUZZ=0 skips the fuzz pass. A count, not a duration: with a duration, Go
# 1.26's fuzz coordinator can fail a target with "context deadline exceeded"
# and no crasher at the deadline (golang/go#75804, fixed in Go 1.27).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

FUZZTIME=${FUZZTIME:-20000x}

# Real-kernel NAT tests (engine/sync, engine/lan) run when the shared netlab
# tool is beside the repository and we are root; they skip otherwise.
if [ -z "${NETLAB:-}" ] && [ -x "$root/../shared/netlab/netlab" ]; then
  export NETLAB="$root/../shared/netlab/netlab"
fi
FUZZ=${FUZZ:-1}
LINT=${LINT:-1}

step() { printf '\n== %s\n' "$*"; }
fail() { printf '\ntest.sh: FAILED: %s\n' "$*" >&2; exit 1; }

step "dependencies"
bash scripts/deps.sh || fail "scripts/deps.sh (see above for what to install)"
go version

# Say which of the optional real-world tests will run (they skip otherwise).
if [ -n "${NETLAB:-}" ] && [ "$(id -u)" = 0 ]; then
  echo "netlab: $NETLAB: the real-kernel NAT and LAN tests run"
else
  echo "netlab: not found beside the repository or not root: the real-kernel NAT and LAN tests skip"
fi
if command -v Xvfb >/dev/null 2>&1; then
  echo "Xvfb: found: the arena's window test runs"
else
  echo "Xvfb: not found: the arena's window test skips"
fi

step "gofmt"
# testdata may hold deliberately unformatted inputs.
mapfile -t gofiles < <(find . -name '*.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path '*/vendor/*' | sort)
if [ ${#gofiles[@]} -gt 0 ]; then
  unformatted=$(gofmt -l "${gofiles[@]}")
  if [ -n "$unformatted" ]; then
    printf '%s\n' "$unformatted" >&2
    fail "files above are not gofmt'd (run: gofmt -w <file>)"
  fi
fi

step "go vet ./..."
go vet ./... || fail "go vet"
# bench/ is a module of its own (it compares Skein with quic-go and kcp-go):
# vet compiles its benchmarks; run them with the command in bench/README.md.
(cd bench && go vet ./...) || fail "go vet (bench module)"

if [ "$LINT" = 0 ]; then
  step "static analysis: skipped (LINT=0)"
else
  step "static analysis (scripts/lint.sh: staticcheck, golangci-lint)"
  bash scripts/lint.sh || fail "static analysis (run alone: bash scripts/lint.sh)"
fi

module=$(go list -m)
mapfile -t pkgs < <(go list ./...)
engine=() raced=() rest=()
for p in "${pkgs[@]}"; do
  case "$p" in
    "$module"/engine | "$module"/engine/*) engine+=("$p") ;;
    # The load test's 40 clients run in the test process (the server is
    # its own binary, built without -race): under -race the package takes
    # about 20 s on a loaded 2-core machine, 2-3 s more than without.
    "$module"/server/internal/loadtest) raced+=("$p") ;;
    *) rest+=("$p") ;;
  esac
done

if [ ${#engine[@]} -gt 0 ]; then
  step "go test -race -count=1 (engine: ${#engine[@]} packages; ${raced[*]#"$module"/})"
  go test -race -count=1 "${engine[@]}" "${raced[@]}" || fail "engine and load tests (-race)"
  # Allocation tests skip under -race (its sync.Pool drops items on
  # purpose): run them once without it.
  step "go test -count=1 -run 'Alloc' (engine, allocation counts)"
  go test -count=1 -run 'Alloc' "${engine[@]}" || fail "engine allocation tests"
fi
if [ ${#rest[@]} -gt 0 ]; then
  step "go test -count=1 (others: ${#rest[@]} packages)"
  go test -count=1 "${rest[@]}" || fail "tests"
fi

if [ "$FUZZ" = 0 ]; then
  step "fuzz: skipped (FUZZ=0)"
else
  step "fuzz: each target for $FUZZTIME"
  # Lines "dir<TAB>FuzzName" for every func Fuzz* in a _test.go file.
  mapfile -t targets < <(
    find . -name '*_test.go' -not -path './.git/*' -not -path '*/testdata/*' -not -path '*/vendor/*' -print0 |
      xargs -0 -r grep -HoE '^func Fuzz[A-Za-z0-9_]*\(' |
      sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*)\($#\1\t\2#' | sort -u
  )
  if [ ${#targets[@]} -eq 0 ]; then
    echo "no fuzz targets"
  fi
  for t in "${targets[@]}"; do
    dir=${t%%$'\t'*} name=${t#*$'\t'}
    echo "-- $dir $name"
    stamp=$(mktemp)
    if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$dir"; then
      # Print each failing input the run wrote, in full: the CI log is then
      # enough to reproduce it, and the fix commits the file as a seed.
      find "$dir/testdata/fuzz/$name" -type f -newer "$stamp" 2>/dev/null | while read -r f; do
        printf '\n-- %s (commit it with the fix, as a seed):\n' "$f"
        cat "$f"
      done || true
      rm -f "$stamp"
      fail "fuzz $name in $dir"
    fi
    rm -f "$stamp"
  done
fi

printf '\ntest.sh: all checks passed\n'
