#!/usr/bin/env bash
# Builds tests/consumers/consumer.cpp the four ways a user consumes AeroDB, from a
# `meson install --destdir` prefix or as a Meson subproject, runs each program (it opens a
# store, writes, reads and prints), and checks that the subproject build compiled nothing
# of AeroDB's own (no test, example or benchmark). Prints one line per way and exits
# non-zero if any failed. Needs cmake, pkg-config, meson, ninja and git.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/aerodb-consumers-XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
say() { printf '%-32s %s\n' "$1" "$2"; }
run_consumer() {  # NAME BINARY
  local out
  if out=$("$2" "$work/data-$1" 2>&1) && [[ "$out" == "consumer ok: "* ]]; then
    say "$1" "ok: ${out#consumer ok: }"
  else
    say "$1" "FAILED: $out"; failed=$((failed + 1))
  fi
}

# An installed copy under a destdir, as a package would lay it out under /usr.
if ! { meson setup "$work/build" "$root" --prefix=/usr -Dtests=false -Dexamples=false >"$work/setup.log" 2>&1 &&
       meson install -C "$work/build" --destdir "$work/destdir" >"$work/install.log" 2>&1; }; then
  cat "$work/setup.log" "$work/install.log"; echo "install FAILED"; exit 1
fi
prefix="$work/destdir/usr"
pcdir=$(dirname "$(find "$prefix" -name aerodb.pc | head -1)")
cmakedir=$(dirname "$(find "$prefix" -name aerodbConfig.cmake | head -1)")

# 1. CMake find_package.
if cmake -S "$root/tests/consumers/cmake" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log" 2>&1 &&
   cmake --build "$work/cmake" >>"$work/cmake.log" 2>&1; then
  run_consumer "cmake find_package" "$work/cmake/consumer"
else
  tail -20 "$work/cmake.log"; say "cmake find_package" "FAILED (build)"; failed=$((failed + 1))
fi

# 2. pkg-config.
if flags=$(PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$work/destdir" pkg-config --cflags --libs aerodb) &&
   c++ "$root/tests/consumers/consumer.cpp" $flags -o "$work/pkgconfig-consumer" 2>"$work/pkgconfig.log"; then
  run_consumer "pkg-config" "$work/pkgconfig-consumer"
else
  cat "$work/pkgconfig.log"; say "pkg-config" "FAILED (build)"; failed=$((failed + 1))
fi

# 3. Plain -I and -lboost_json.
if c++ -std=c++20 -I"$prefix/include" "$root/tests/consumers/consumer.cpp" -lboost_json -pthread \
     -o "$work/plain-consumer" 2>"$work/plain.log"; then
  run_consumer "plain -I -lboost_json" "$work/plain-consumer"
else
  cat "$work/plain.log"; say "plain -I -lboost_json" "FAILED (build)"; failed=$((failed + 1))
fi

# 4. Meson subproject through a wrap pointing at this clone.
proj="$work/meson-project"
mkdir -p "$proj/subprojects"
cp "$root/tests/consumers/meson/meson.build" "$proj/"
cp "$root/tests/consumers/consumer.cpp" "$work/"
sed -i "s|'../consumer.cpp'|'$work/consumer.cpp'|" "$proj/meson.build"
cat >"$proj/subprojects/aerodb.wrap" <<WRAP
[wrap-git]
url = $root
revision = HEAD
depth = 1

[provide]
dependency_names = aerodb
WRAP
if meson setup "$proj/build" "$proj" >"$work/meson.log" 2>&1 && ninja -C "$proj/build" >>"$work/meson.log" 2>&1; then
  run_consumer "meson subproject" "$proj/build/consumer"
  # Everything the consumer's build compiled: only its own program.
  compiled=$(awk 'NR > 1 { print $4 }' "$proj/build/.ninja_log" | grep -E '\.o$' || true)
  if echo "$compiled" | grep -q 'subprojects/'; then
    say "meson subproject" "FAILED: compiled AeroDB's own targets: $(echo "$compiled" | grep subprojects/ | head -3 | tr '\n' ' ')"
    failed=$((failed + 1))
  else
    say "meson subproject" "compiled only: $(echo "$compiled" | tr '\n' ' ')"
  fi
else
  tail -20 "$work/meson.log"; say "meson subproject" "FAILED (build)"; failed=$((failed + 1))
fi

echo "consumers: $((4 - failed)) of 4 ways built and ran"
[ "$failed" -eq 0 ]
