#!/bin/sh
# The benchmark suite against LMDB, RocksDB, LevelDB and SQLite, in one command.
#
#   ./scripts/bench.sh            full run (about 25 minutes on 2 CPUs); writes the committed
#                                 results: docs/benchmarks/{results.json,results.md,*.png}
#                                 and docs/benchmarks.md
#   ./scripts/bench.sh --quick    tiny sizes, well under a minute of running (CI); writes to
#                                 build-bench/quick-results/ and leaves docs/ alone
#
# On a fresh Debian 12 machine it installs the build dependencies and the peers' Debian
# packages with apt-get (as root, or through sudo), configures a release build in
# build-bench/ with -Dbench=true -Dpeers=enabled, builds bench_suite, runs it with its data
# on the disk under bench-data/ (override with BENCH_DATA_DIR; never tmpfs), and renders the
# charts with gnuplot. BENCH_NO_APT=1 skips the apt-get step; BENCH_BUILD_DIR reuses another
# build directory; BENCH_ARGS adds bench_suite options (e.g. "--reps-long 1").
#
# One bench_suite invocation measures everything: the commit workloads (the floors, W1, W2)
# run in two passes inside it, with idle CPUs and with a nice-19 spinner thread per CPU
# (bench_suite --commit-passes, default idle,busy), and results.md holds both passes' tables.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

mode=full
case "${1:-}" in
  --quick) mode=quick ;;
  "") ;;
  *) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac

# BENCH_DOCS_ONLY=1: no install, no build, no run; re-render the charts and regenerate
# docs/benchmarks.md from the results already in docs/benchmarks/.
docs_only="${BENCH_DOCS_ONLY:-}"
[ -n "$docs_only" ] && BENCH_NO_APT=1

if [ -z "${BENCH_NO_APT:-}" ]; then
  pkgs="meson ninja-build g++ pkg-config libboost1.81-dev libboost-json1.81-dev
        liblmdb-dev librocksdb-dev libleveldb-dev libsqlite3-dev gnuplot-nox"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  echo "bench.sh: installing packages with apt-get" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $pkgs >/dev/null
fi

build="${BENCH_BUILD_DIR:-$root/build-bench}"
if [ -n "$docs_only" ]; then :; elif [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dbench=true -Dpeers=enabled \
    -Dtests=false -Dexamples=false >/dev/null
fi
if [ -z "$docs_only" ]; then
  echo "bench.sh: building bench_suite" >&2
  ninja -C "$build" bench/bench_suite >/dev/null
fi

data="${BENCH_DATA_DIR:-$root/bench-data}"
if [ -n "$docs_only" ]; then
  out="$root/docs/benchmarks"
elif [ "$mode" = quick ]; then
  out="$build/quick-results"
  mkdir -p "$out"
  "$build/bench/bench_suite" --quick --dir "$data" --out "$out" ${BENCH_ARGS:-} >/dev/null
else
  out="$root/docs/benchmarks"
  mkdir -p "$out"
  # The busy-CPU pass of W1/W2 used to be a second run written to busy-cpus/; it is now a
  # pass of this one run (results.md, commits_busy.png), so the old directory goes.
  rm -rf "$out/busy-cpus"
  "$build/bench/bench_suite" --dir "$data" --out "$out" ${BENCH_ARGS:-} >/dev/null
fi
rmdir "$data" 2>/dev/null || true

(cd "$out" && gnuplot charts.gp)
echo "bench.sh: wrote $out/results.json, results.md and the charts:" >&2
ls "$out"/*.png >&2

[ "$mode" = quick ] && exit 0

# docs/benchmarks.md: the fixed introduction, the dated sections written by hand (runs of
# other harnesses, partial re-runs), this run's report, the charts, the analysis. The
# dated sections are kept from the page being replaced: they are not this run's.
kept=$(awk '/^<!-- dated sections:/{on=1} on{print} /^<!-- end of dated sections -->/{on=0}' \
  "$root/docs/benchmarks.md" 2>/dev/null || true)
{
  cat <<'EOF'
# Benchmarks: AeroDB against LMDB, RocksDB, LevelDB and SQLite

The tables and charts on this page come from one run of the command below on the machine
described under "Machine and build", on one disk, with every engine's repetitions
interleaved (the analysis at the end also quotes profiles taken afterwards, and says so).
Read the **ratios**: the machines are shared and noisy, so an absolute number alone proves
nothing (the rules of our BENCHMARKS.md; its workloads W1-W9 are the headings below).
Targets are measured, never asserted: a missed one says **missed**, and the analysis at
the end says where the time goes and what would close it.

Reproduce everything (Debian 12; installs the packages, builds, runs, renders):

```sh
./scripts/bench.sh
```

It writes [benchmarks/results.json](benchmarks/results.json) (every repetition of every
cell), [benchmarks/results.md](benchmarks/results.md) (the tables below) and the charts,
and regenerates this page. `./scripts/bench.sh --quick` is the CI smoke run (tiny sizes,
seconds, numbers meaningless). How the harness works: [bench/README.md](../bench/README.md).

## How it measures

- Documents: 16-byte `_id`, exactly 256 bytes of JSON
  `{"_id":..,"bucket":0..99,"score":0..999.999,"body":<random base64>}`; the body has 6
  bits of entropy per byte, and compression is off in RocksDB and LevelDB.
- Durable settings only: AeroDB fsyncs every commit (the accelerated engine groups
  concurrent commits into one fsync); RocksDB and LevelDB `sync = true`; LMDB default flags
  (two fdatasyncs per commit); SQLite `journal_mode=WAL`, `synchronous=FULL`, prepared
  statements reused in every transaction.
- Secondary indexes: AeroDB `create_index` on `bucket` and `score`; SQLite JSON1
  expression indexes on `json_extract(doc,'$.bucket')` and `json_extract(doc,'$.score')`;
  LMDB, RocksDB and LevelDB get hand-built index keys (`0x01 bucket _id`, `0x02 score _id`)
  written in the same atomic commit as the document, which is what an application on a
  key-value store does. Every engine answers the same queries, and their answers are
  compared (fingerprint of the ordered `_id`s).
- Each cell runs in its own forked process, in a fresh directory; the data set for
  W3/W4/W6/W9 is loaded in 1000-document durable commits, then the process is killed
  with SIGKILL; W7 times the next open up to the first successful read (AeroDB: log
  replay and every index rebuilt). AeroDB then checkpoints while two durable writers run
  (W8), is killed again, and W7 is timed again from the checkpoint.
- W7's read floor: right after each recovery, the same process reads every file of the
  recovered directory once, in 1 MiB `read`s (`bench/suite/suite_util.hpp`,
  `measure_read_floor`). The files are then mostly in the page cache, as they were for the
  recovery itself when it ran second. The report gives each recovery as a multiple of its
  floor. For AeroDB it also splits the open into its phases: snapshot read, snapshot load,
  log replay, cleanup and index build (`recovery_report::snapshot_read`, `snapshot_load`,
  `log_replay`, `cleanup`, `index_build`; [architecture.md](architecture.md#recoverys-phases-and-progress)).
- The floor is `write + fdatasync` of 256-byte records, appending (as a log does) and
  overwriting a pre-zeroed, synced file, measured in the same run and directory.
- The commit workloads (the floors, W1, W2) run in two passes of the same run: with idle
  CPUs, and with a nice-19 spinner thread per CPU (see "Idle vCPUs" below). Each
  repetition runs both passes, and which one goes first alternates. Each pass has its own
  tables and its own goal table. Besides the baseline and accelerated engines, they also run
  `group_commit`, which is the baseline with only group commit switched on
  (`basic_database<group_commit, full_traversal, ordered_index>`).
- Repetitions: 5 for W1/W2/W5 (interleaved engine by engine inside each repetition and
  pass) and 3 for the 1M-document workloads, which are long (a 1M-document load per engine per
  repetition); the medians are reported, with p50 and p99 of per-operation latencies.

EOF
  if [ -n "$kept" ]; then printf '%s\n\n' "$kept"; fi
  cat "$out/results.md"
  cat <<'EOF'

## Idle vCPUs: why W1/W2 run a busy-CPU pass too

On this VM an `fdatasync` that is waited for while the CPUs are idle completes only at the
next timer tick (4 ms at `CONFIG_HZ=250`): the idle pass's floors show it. Engines whose
waiting writers spin or yield (RocksDB's write thread does) keep a CPU busy and escape the
tick; engines whose writers sleep (AeroDB's group commit, LMDB, SQLite) do not. So the
commit workloads run a second pass in the same run, with a nice-19 spinner thread per CPU
(`bench_suite --commit-passes idle,busy`, the default), which takes CPU only when nothing
else wants it, so every engine sees the same, tick-free disk. Both passes' tables are under
"Results" above, and both passes' goal tables under "Targets".

## Charts

![W1/W2 commits per second against writer threads, idle CPUs](benchmarks/commits.png)

![W1/W2 commits per second against writer threads, busy CPUs](benchmarks/commits_busy.png)

![W4 point reads per second](benchmarks/reads.png)

![W6 query latency](benchmarks/queries.png)

![W7 recovery time](benchmarks/recovery.png)

![W9 memory per document](benchmarks/memory.png)

EOF
  if [ -f "$out/analysis.md" ]; then cat "$out/analysis.md"; fi
} > "$root/docs/benchmarks.md"
echo "bench.sh: wrote docs/benchmarks.md" >&2
