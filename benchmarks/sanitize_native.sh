#!/usr/bin/env bash
# Build amago_fast._C with AddressSanitizer + UBSan into a separate build dir (never the
# editable install), then run the replay, relabel and native-fault tests plus a bounded
# hypothesis fuzz of every pybind entry point and the snapshot loader against it.
#
#   benchmarks/sanitize_native.sh [fuzz_seconds=60]
#
# Env: ASAN_BUILD (default /tmp/asan_build), ASAN_PKG (default /tmp/asan_pkg).
# How: the package is overlaid in $ASAN_PKG/amago_fast (symlinks to the sources, the ASan
# _C in place of the normal one), put first on PYTHONPATH; the editable-install finder
# is told to stand aside (SKBUILD_EDITABLE_SKIP) and libasan is preloaded, since python
# itself is not instrumented. Any ASan/UBSan report aborts the process: exit code != 0.
set -euo pipefail
FUZZ_SECONDS=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${ASAN_BUILD:-/tmp/asan_build}
PKG=${ASAN_PKG:-/tmp/asan_pkg}
PY=${PYTHON:-python}
START=$(date +%s)

echo "== configure + build (ASan+UBSan) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMAGO_FAST_SANITIZE=ON \
  -DPython_EXECUTABLE="$(command -v "$PY")" -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" >/dev/null
cmake --build "$BUILD" -j "$(nproc)"
SO=$(ls "$BUILD"/_C*.so)

echo "== overlay package in $PKG"
rm -rf "$PKG" && mkdir -p "$PKG/amago_fast"
for e in "$ROOT"/amago_fast/*; do
  case "$(basename "$e")" in _C*.so|__pycache__) continue ;; esac
  ln -s "$e" "$PKG/amago_fast/"
done
ln -s "$ROOT/kernels" "$PKG/amago_fast/kernels"
cp "$SO" "$PKG/amago_fast/"

EDITABLE_BUILD=$("$PY" -c "import sys; print(next((f.path for f in sys.meta_path if hasattr(f, 'known_wheel_files') and f.path), ''))")
export SKBUILD_EDITABLE_SKIP="$EDITABLE_BUILD"
export PYTHONPATH="$PKG${PYTHONPATH:+:$PYTHONPATH}"
# libstdc++ too: python is not linked against it, and ASan's __cxa_throw interceptor must
# find the real one at start-up (otherwise the first C++ exception aborts)
export LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so.6)"
# leaks: CPython and torch keep allocations alive at exit by design
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

cd "$PKG"  # not the source tree: nothing may shadow the overlay
# the tests must really use the instrumented module
"$PY" - "$PKG" <<'EOF'
import sys
import amago_fast._C as c
assert c.__file__.startswith(sys.argv[1]), f"not the ASan build: {c.__file__}"
print("using", c.__file__)
EOF

echo "== tests under ASan+UBSan"
"$PY" -m pytest -q -x -p no:cacheprovider "$ROOT/tests/replay" "$ROOT/tests/relabel" \
  "$ROOT"/tests/faults/test_snapshot_*.py "$ROOT"/tests/faults/test_native_*.py -m "not slow"

echo "== hypothesis fuzz of the native entry points and the snapshot loader (${FUZZ_SECONDS}s)"
"$PY" "$ROOT/benchmarks/sanitize_fuzz.py" --seconds "$FUZZ_SECONDS"

echo "== sanitizer run passed in $(( $(date +%s) - START )) s"
