#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, one after the
# other, from its committed seed corpus (tests/fuzz/corpus/NAME, read only):
# new inputs go to BUILD/fuzz/corpus/NAME and findings to
# BUILD/fuzz/artifacts/NAME-*. Exits 1 when any target finds a crash, a
# leak, a sanitizer report, a timeout or a broken property (its log is
# printed), 2 on bad usage.
#
#   tests/fuzz/run.sh BUILD SECONDS [NAME...]     e.g. run.sh build-fuzz 600 csv
#
# BUILD is a build directory configured with CC=clang, FLOWLUA_FUZZ=ON and
# FLOWLUA_SANITIZE=ON (HACKING.md, "Fuzzing").
set -uo pipefail

usage() {
  echo "usage: $0 BUILD SECONDS [NAME...]  (names: $(all_names | tr '\n' ' '))" >&2
  exit 2
}
here=$(cd "$(dirname "$0")" && pwd)
all_names() {
  for f in "$here"/fuzz_*.c; do n=${f##*/fuzz_}; echo "${n%.c}"; done
}
[ $# -ge 2 ] || usage
build=$1 seconds=$2
shift 2
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || usage
names=("$@")
[ ${#names[@]} -gt 0 ] || mapfile -t names < <(all_names)

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
out=$build/fuzz
mkdir -p "$out/artifacts" "$out/logs"
failed=()
for name in "${names[@]}"; do
  exe=$build/tests/fuzz/fuzz_$name
  seeds=$here/corpus/$name
  if [ ! -x "$exe" ] || [ ! -d "$seeds" ]; then
    echo "fuzz: no target '$name' in $build (or no $seeds)" >&2
    usage
  fi
  mkdir -p "$out/corpus/$name"
  dict=()
  [ -f "$here/$name.dict" ] && dict=(-dict="$here/$name.dict")
  log=$out/logs/$name.log
  # -timeout: one input running this long is a finding (a hang).
  "$exe" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$out/artifacts/$name-" \
    "${dict[@]}" "$out/corpus/$name" "$seeds" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -eq 0 ]; then
    echo "fuzz: $name ok: ${runs:-?} inputs in ${seconds} s, ${cov:-cov: ?}"
  else
    echo "fuzz: $name FAILED (exit $rc) after ${runs:-?} inputs; log $log:" >&2
    grep -v '^#[0-9]' "$log" | tail -60 >&2
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]} (inputs in $out/artifacts)" >&2
  exit 1
fi
