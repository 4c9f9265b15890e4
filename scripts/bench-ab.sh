#!/usr/bin/env bash
# bench-ab.sh: compare benchmarks of an older revision with the working tree
# on a noisy machine, by alternating the two builds run by run (old, new,
# new, old, ...) so that both see the same load. BENCHMARKS.md's "interleaved
# with the code before" figures come from it.
#
# Usage: bash scripts/bench-ab.sh REV PKG REGEX [ROUNDS] [-- test flags...]
#   REV     the older revision (a commit, e.g. 65dae2d)
#   PKG     one package, e.g. ./engine/net/
#   REGEX   the -bench pattern, e.g. 'Baseline|Skein'
#   ROUNDS  rounds of (old, new, new, old); default 3, so 6 runs of each
#   test flags: passed to every run, e.g. -- -test.benchtime 20000x
# Output: old.txt and new.txt in a temporary directory (printed), and a
# benchstat comparison when benchstat is on PATH or in ~/go/bin.
set -euo pipefail

[ $# -ge 3 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
rev=$1 pkg=$2 regex=$3
shift 3
rounds=3
if [ $# -gt 0 ] && [ "$1" != -- ]; then rounds=$1; shift; fi
[ "${1:-}" = -- ] && shift

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$(mktemp -d)
tree=$out/tree
git -C "$root" worktree add -q --detach "$tree" "$rev"
trap 'git -C "$root" worktree remove --force "$tree"' EXIT

(cd "$tree" && go test -c -o "$out/old.test" "$pkg")
(cd "$root" && go test -c -o "$out/new.test" "$pkg")

run() { # run BUILD [flags]: one -count 1 run in the package's directory, appended to BUILD.txt
  local build=$1
  shift
  (cd "$root/$pkg" && "$out/$build.test" -test.run '^$' -test.bench "$regex" -test.benchmem -test.count 1 "$@" 2>&1) |
    grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >>"$out/$build.txt"
}
for ((i = 0; i < rounds; i++)); do
  echo "round $((i + 1))/$rounds, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  run old "$@"; run new "$@"; run new "$@"; run old "$@"
done
echo "results in $out (old.txt: $rev, new.txt: working tree)"
bs=$(command -v benchstat || echo "$HOME/go/bin/benchstat")
[ -x "$bs" ] && "$bs" "$out/old.txt" "$out/new.txt" || true
