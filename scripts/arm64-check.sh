#!/usr/bin/env bash
# Build tinyeff's C kernels for ARM64 and run the kernel tests under qemu-aarch64 (user mode), on an
# x86-64 Debian 12 host. The default test suite only cross-compiles csrc/ (tests/test_arm64_build.py);
# this script is the emulated run: minutes, and it downloads Debian arm64 packages and aarch64 wheels.
#
# Needs: gcc-aarch64-linux-gnu, qemu-user (apt-get install gcc-aarch64-linux-gnu qemu-user), apt
# access to a Debian mirror, pip access to PyPI, and the host's cffi (it emits the module's C source,
# so the aarch64 cffi wheel must be the same version).
# Touches nothing outside $W: a private apt state directory (no `dpkg --add-architecture`), and the
# checkout is only read (copied to $W/proj and built there).
#
# Each download stage leaves a stamp in $W/stamps and is skipped the next time; FORCE=1 redoes them.
#   scripts/arm64-check.sh                                   # tests/kernels under emulation
#   WITH_NUMBA=0 scripts/arm64-check.sh                      # ref + C tiers only (faster)
#   PYTEST_ARGS="-q -x tests/kernels/test_bnorm.py" scripts/arm64-check.sh
#   QEMU_CPU=cortex-a53 scripts/arm64-check.sh               # a CPU without dot-product (neon path)
set -euo pipefail

SRC=${SRC:-$(cd "$(dirname "$0")/.." && pwd)}
W=${W:-${TMPDIR:-/tmp}/tinyeff-arm64}
WITH_NUMBA=${WITH_NUMBA:-1}
QEMU_CPU=${QEMU_CPU:-max}                 # max: ARMv8.x with dot-product, so neon_dotprod is detected
PYTEST_ARGS=${PYTEST_ARGS:--q -rfEs --durations=10 -p no:cacheprovider tests/kernels}
NICE="nice -n 19"
SYSROOT=$W/sysroot
SITE=$W/site-arm64
SITE_NUMBA=$W/site-arm64-numba
PROJ=$W/proj
BUILD=$W/build
STAMPS=$W/stamps
PY="qemu-aarch64 -cpu $QEMU_CPU -L $SYSROOT $SYSROOT/usr/bin/python3.11"

# Wheel versions follow the host's test environment where it has them (cffi must match exactly).
ver() { python3 -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo "$2"; }
WHEELS="numpy==$(ver numpy 2.4.6) cffi==$(ver cffi 2.0.0) pycparser==$(ver pycparser 3.0)
        pytest==$(ver pytest 9.0.3) hypothesis==$(ver hypothesis 6.155.2)
        pytest-benchmark==$(ver pytest-benchmark 5.2.3) threadpoolctl==$(ver threadpoolctl 3.8.0)
        scipy==$(ver scipy 1.17.1) tqdm==$(ver tqdm 4.70.1) psutil==$(ver psutil 7.2.2)
        ml_dtypes==$(ver ml_dtypes 0.7.0) filelock==$(ver filelock 3.16.1)"
NUMBA_WHEELS="numba==$(ver numba 0.68.1) llvmlite==$(ver llvmlite 0.50.0)"

# Debian arm64 packages: python3.11 and the shared libraries it, the numpy/scipy/numba wheels and the
# OpenMP extension load (closure of `apt-cache depends --recurse python3.11 libpython3.11-dev libgomp1`
# minus what nothing here runs).
DEBS="libc6 libgcc-s1 libstdc++6 libgomp1 gcc-12-base libexpat1 zlib1g libffi8 libssl3 libbz2-1.0
      liblzma5 libsqlite3-0 libcrypt1 libncursesw6 libtinfo6 libreadline8 readline-common libuuid1
      libdb5.3 libgdbm6 libgdbm-compat4 libnsl2 libtirpc3 libtirpc-common libgssapi-krb5-2
      libk5crypto3 libkeyutils1 libkrb5-3 libkrb5support0 libcom-err2 libzstd1 libmd0 libacl1
      libselinux1 libpcre2-8-0 media-types
      python3.11 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libpython3.11
      libpython3.11-dev"

PLATFORMS=""
for v in 17 24 26 27 28 31 34 35 36; do PLATFORMS="$PLATFORMS --platform manylinux_2_${v}_aarch64"; done
PLATFORMS="$PLATFORMS --platform manylinux2014_aarch64"   # older pip does not expand manylinux_2_X down
PIP_TARGET_ARGS="--only-binary=:all: $PLATFORMS --python-version 3.11 --implementation cp
                 --abi cp311 --abi abi3 --abi none"

say() { printf '\n=== %s  (%s)\n' "$*" "$(date +%T)"; }
done_() { [[ "${FORCE:-0}" != 1 && -e "$STAMPS/$1" ]]; }
stamp() { touch "$STAMPS/$1"; }

for tool in aarch64-linux-gnu-gcc qemu-aarch64 apt-get dpkg-deb pip python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install gcc-aarch64-linux-gnu qemu-user)" >&2; exit 1; }
done
mkdir -p "$W" "$STAMPS"
T0=$(date +%s)

# --- 1. aarch64 sysroot from Debian's arm64 packages (private apt state; host dpkg untouched) --------
if ! done_ sysroot; then
    say "1/5 sysroot: apt-get download arm64 debs, dpkg -x into $SYSROOT"
    A=$W/apt
    mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/debs"
    : > "$A/status"
    cat > "$A/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
APT::Sandbox::User "root";
Dir::State "$A";
Dir::State::lists "$A/lists";
Dir::State::status "$A/status";
Dir::Cache "$A/cache";
CONF
    export APT_CONFIG=$A/apt.conf
    $NICE apt-get -q update
    rm -f "$A"/debs/*.deb
    (cd "$A/debs" && $NICE apt-get -q download $DEBS)
    rm -rf "$SYSROOT"; mkdir -p "$SYSROOT"
    for d in "$A"/debs/*.deb; do dpkg-deb -x "$d" "$SYSROOT"; done
    unset APT_CONFIG
    $PY -c 'import platform, sys; print("emulated", sys.version.split()[0], platform.machine())'
    stamp sysroot
fi

# --- 2. aarch64 wheels from PyPI, installed into plain target dirs (used through PYTHONPATH) ----------
if ! done_ wheels; then
    say "2/5 wheels: pip download --platform manylinux_*_aarch64, install --target"
    rm -rf "$W/wheels" "$SITE" "$SITE_NUMBA"; mkdir -p "$W/wheels/base" "$W/wheels/numba"
    $NICE pip download -q --dest "$W/wheels/base" $PIP_TARGET_ARGS $WHEELS
    $NICE pip download -q --dest "$W/wheels/numba" $PIP_TARGET_ARGS --no-deps $NUMBA_WHEELS
    $NICE pip install -q --no-index --no-deps --target "$SITE" $PIP_TARGET_ARGS "$W"/wheels/base/*.whl
    $NICE pip install -q --no-index --no-deps --target "$SITE_NUMBA" $PIP_TARGET_ARGS "$W"/wheels/numba/*.whl
    stamp wheels
fi

# --- 3. a fresh copy of the project ------------------------------------------------------------------
say "3/5 copy $SRC -> $PROJ"
rm -rf "$PROJ"
mkdir -p "$PROJ"
(cd "$SRC" && tar --exclude=.git --exclude='*.so' --exclude=__pycache__ --exclude=runs -cf - .) | (cd "$PROJ" && tar -xf -)

# --- 4. cross-build the cffi extension: the project's own build script emits the C source and names
#        the sources and flags; aarch64-linux-gnu-gcc compiles them against Debian's arm64 headers. --
say "4/5 cross-compile tinyeff/_tinyeff_c.abi3.so for aarch64"
rm -rf "$BUILD"; mkdir -p "$BUILD/obj"
CC=aarch64-linux-gnu-gcc python3 "$PROJ/tinyeff/kernels/_build_c.py" --emit "$BUILD/_tinyeff_c.c"
# shellcheck disable=SC1091
source "$BUILD/_tinyeff_c.c.vars"
echo "flags: ${CARGS[*]} | link: ${LARGS[*]}"
PYINC="-I$SYSROOT/usr/include/python3.11 -I$SYSROOT/usr/include"
for f in "$BUILD/_tinyeff_c.c" "${SOURCES[@]}"; do echo "$f"; done | $NICE xargs -P "$(nproc)" -I{} sh -c \
    'f={}; aarch64-linux-gnu-gcc -DNDEBUG -fwrapv -fPIC '"${CARGS[*]} ${INCLUDES[*]} $PYINC"' -c "$f" -o '"$BUILD"'/obj/$(echo "$f" | tr / _).o'
aarch64-linux-gnu-gcc -shared "${LARGS[@]}" "$BUILD"/obj/*.o -o "$BUILD/_tinyeff_c.abi3.so"
cp "$BUILD/_tinyeff_c.abi3.so" "$PROJ/tinyeff/_tinyeff_c.abi3.so"
file "$PROJ/tinyeff/_tinyeff_c.abi3.so"

# --- 5. run under emulation (features come from HWCAP, so no TINYEFF_CPU_FEATURES override) ----------
export PYTHONPATH=$PROJ:$SITE
[[ "$WITH_NUMBA" == 1 ]] && PYTHONPATH=$PYTHONPATH:$SITE_NUMBA
export OMP_WAIT_POLICY=PASSIVE
cd "$PROJ"
say "5/5 tinyeff info (emulated, -cpu $QEMU_CPU)"
$PY -m tinyeff info 2>&1 | sed -n '1,/^$/p;/^kernel/,/^$/p'
say "5/5 pytest $PYTEST_ARGS (emulated)"
mkdir -p "$W/results"
T1=$(date +%s)
set +e
$NICE $PY -m pytest $PYTEST_ARGS 2>&1 | tee "$W/results/pytest.log"
RC=${PIPESTATUS[0]}
set -e
T2=$(date +%s)
say "done: pytest rc=$RC, emulated tests $((T2 - T1)) s, whole script $((T2 - T0)) s"
exit "$RC"
