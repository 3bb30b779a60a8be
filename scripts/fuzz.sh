#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang, ASan and UBSan, and fuzzes each
# one for SECONDS_PER_TARGET seconds (default 60), two targets at a time.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     e.g. scripts/fuzz.sh 60 (CI), scripts/fuzz.sh 3600
#
# Each target starts from a fresh copy of its committed seeds (tests/fuzz/corpus/<target>,
# never written to) plus seeds make_seeds writes by running the engine, so the WAL and
# snapshot seeds always have the current on-disk format. Prints, per target, the number of
# executions and whether it found anything, then exits non-zero on any finding. Everything
# a run produces stays in the build directory, under fuzz-run/<target>/:
#   corpus/      the working corpus (seeds plus what libFuzzer added)
#   artifacts/   crash-*, leak-*, timeout-*, oom-*: reproduce with <build>/tests/fuzz/<target> FILE
#   log          libFuzzer's output
#
# Environment: AERODB_FUZZ_BUILD   build directory (default: build-fuzz in the repository)
#              AERODB_FUZZ_JOBS    targets fuzzed at once (default 2)
#              AERODB_FUZZ_NINJA_JOBS  parallel compile jobs (default 2)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$(pwd)

secs=${1:-60}
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET]" >&2
  exit 2
fi
build=${AERODB_FUZZ_BUILD:-$root/build-fuzz}
parallel=${AERODB_FUZZ_JOBS:-2}
targets=(fuzz_wal_reader fuzz_snapshot fuzz_document_codec fuzz_json_document fuzz_query_parse fuzz_replication_wire)
start=$(date +%s)

if [ ! -f "$build/build.ninja" ]; then
  echo "=== fuzz: setup $build"
  if ! CXX=clang++ meson setup "$build" --werror -Dfuzz=true -Dtests=false -Dexamples=false \
      -Dbench=false -Dbuildtype=debugoptimized -Db_lundef=false >"$build.setup.log" 2>&1; then
    cat "$build.setup.log"
    exit 1
  fi
fi
echo "=== fuzz: build"
ninja_targets=(tests/fuzz/make_seeds)
for t in "${targets[@]}"; do ninja_targets+=("tests/fuzz/$t"); done
if ! ninja -C "$build" -j "${AERODB_FUZZ_NINJA_JOBS:-2}" "${ninja_targets[@]}" >"$build/fuzz-build.log" 2>&1; then
  tail -50 "$build/fuzz-build.log"
  exit 1
fi

echo "=== fuzz: seeds"
runs="$build/fuzz-run"
rm -rf "$runs"
mkdir -p "$runs/generated"
if ! "$build/tests/fuzz/make_seeds" "$runs/generated"; then
  echo "make_seeds failed" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  mkdir -p "$runs/$t/corpus" "$runs/$t/artifacts"
  cp "$root/tests/fuzz/corpus/$t/"* "$runs/$t/corpus/" 2>/dev/null
  cp "$runs/generated/$t/"* "$runs/$t/corpus/" 2>/dev/null
done

# fuzz_one TARGET: runs libFuzzer; its exit status is the finding flag.
fuzz_one() {
  local t="$1" dir="$runs/$1" dict=()
  [ -f "$root/tests/fuzz/$t.dict" ] && dict=(-dict="$root/tests/fuzz/$t.dict")
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    "$build/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 -timeout=25 \
    -rss_limit_mb=2048 -max_len=16384 -artifact_prefix="$dir/artifacts/" "${dict[@]}" \
    "$dir/corpus" >"$dir/log" 2>&1
  echo $? >"$dir/status"
}

echo "=== fuzz: ${#targets[@]} targets x ${secs} s, $parallel at a time"
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n
    running=$((running - 1))
  fi
  fuzz_one "$t" &
  running=$((running + 1))
done
wait

findings=0
printf '%-22s %14s %10s %8s  %s\n' target executions exec/s corpus result
for t in "${targets[@]}"; do
  dir="$runs/$t"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  # Without final stats (a crash), the last status line gives the count.
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$dir/log" | tail -1 | tr -d '#')
  execs=${execs:-0}
  status=$(cat "$dir/status" 2>/dev/null || echo 1)
  artifacts=$(find "$dir/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
    -o -name 'oom-*' \) | wc -l)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  if [ "$status" = 0 ] && [ "$artifacts" = 0 ]; then
    result="nothing found"
  else
    result="FOUND (exit $status, $artifacts artifact(s) in $dir/artifacts; log: $dir/log)"
    findings=$((findings + 1))
  fi
  printf '%-22s %14s %10s %8s  %s\n' "$t" "$execs" "$((execs / secs))" "$corpus" "$result"
done
echo "fuzz took $(( $(date +%s) - start )) s"
if [ "$findings" -gt 0 ]; then
  echo "$findings target(s) found something; reproduce with: $build/tests/fuzz/<target> <artifact>"
  exit 1
fi
