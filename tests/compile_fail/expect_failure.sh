#!/bin/sh
# Compiles one file that must NOT compile, and checks that the compiler's message contains
# the text a user should see. Usage: expect_failure.sh FILE MESSAGE INCLUDE_DIR COMPILER...
file="$1"; message="$2"; include="$3"; shift 3
out=$("$@" -std=c++20 -fsyntax-only -I"$include" "$file" 2>&1)
status=$?
if [ "$status" -eq 0 ]; then
  echo "FAIL: $file compiled, but a policy missing a member must be rejected"
  exit 1
fi
if ! printf '%s' "$out" | grep -qF -- "$message"; then
  echo "FAIL: $file was rejected, but without the expected message:"
  echo "  expected: $message"
  printf '%s\n' "$out" | head -40
  exit 1
fi
echo "ok: $file is rejected with: $message"
