#!/usr/bin/env bash
# Build a release `sgvlm` with `--features cuda` on a machine that has no GPU and no CUDA install, for the H100/H200
# machines (sm_90, driver 580 = CUDA 13.0). Output: dist/cuda/{sgvlm,cuda_check} (stripped), their gzipped copies in
# dist/cuda-gz, and dist/bench (the real-vocabulary tokenizer, the transformers baselines) for scripts/gpu_bench.sh.
#
# Why each step (facts in shared/reference/cuda_build_notes.md):
# - nvcc, headers and libraries come from PyPI wheels pinned to the CUDA 13.0 line: a newer nvvm emits PTX that the
#   13.0 ptxas (and the driver's JIT) rejects, so nvvm and crt are pinned too.
# - the wheels ship only versioned libraries (libcublas.so.13, ...) and no libcuda.so, so the linker gets a folder of
#   unversioned symlinks plus a stub libcuda.so (soname libcuda.so.1) defining the driver symbols cudarc references;
#   at run time the GPU machine's real libcuda.so.1 is loaded instead.
# - CUDA_COMPUTE_CAP=90: there is no GPU here to detect it from.
# - RUSTFLAGS is set once and never changed: changing it rebuilds every crate.
#
# Usage: scripts/build_cuda.sh            (from anywhere; ~10 min on 2 cores the first time)
# Env:   SGVLM_CUDA_VENV (default $HOME/.cache/sgvlm-cuda13-venv), CARGO_TARGET_DIR (default /work/target-cuda or
#        target/cuda), CUDA_COMPUTE_CAP (default 90).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SGVLM_CUDA_VENV:-$HOME/.cache/sgvlm-cuda13-venv}"
if [ -z "${CARGO_TARGET_DIR:-}" ]; then
    if [ -d /work ]; then CARGO_TARGET_DIR=/work/target-cuda; else CARGO_TARGET_DIR="$ROOT/target/cuda"; fi
fi
export CARGO_TARGET_DIR
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
LINKDIR="$CARGO_TARGET_DIR/cuda-link"

log() { printf '[build_cuda %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# 1. CUDA 13.0 toolchain from PyPI.
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv $VENV"
    python3 -m venv "$VENV"
fi
CU13="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/nvidia/cu13"
if [ ! -x "$CU13/bin/nvcc" ] || [ ! -e "$CU13/include/nv/target" ]; then
    log "installing the CUDA 13.0 wheels (~1 GB)"
    "$VENV/bin/pip" install --quiet \
        "nvidia-cuda-nvcc==13.0.88" "nvidia-nvvm==13.0.88" "nvidia-cuda-crt==13.0.88" \
        "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*" "nvidia-cublas==13.0.*" \
        "nvidia-curand==10.4.*" "nvidia-cuda-nvrtc==13.0.*"
fi
[ -x "$CU13/bin/nvcc" ] || { log "nvcc not found under $CU13"; exit 1; }
export PATH="$CU13/bin:$PATH"
export CUDA_ROOT="$CU13" CUDA_PATH="$CU13" CUDA_TOOLKIT_ROOT_DIR="$CU13"
log "nvcc: $(nvcc --version | tail -n 2 | head -n 1)"

# 2. Unversioned symlinks for the linker.
mkdir -p "$LINKDIR"
link_lib() { # link_lib NAME: LINKDIR/NAME.so -> the newest CU13/lib/NAME.so.N
    local target
    target="$(ls "$CU13"/lib/"$1".so.* 2>/dev/null | sort -V | head -n 1 || true)"
    [ -n "$target" ] || { log "missing $1.so.* under $CU13/lib"; exit 1; }
    ln -sf "$target" "$LINKDIR/$1.so"
}
for lib in libcublas libcublasLt libcudart libnvrtc libcurand; do link_lib "$lib"; done

export RUSTFLAGS="-L $LINKDIR"
export LIBRARY_PATH="$LINKDIR${LIBRARY_PATH:+:$LIBRARY_PATH}"
cd "$ROOT"

# 3. Build the libraries first (no executable is linked yet), so that cudarc's rlib exists to read symbols from.
log "building sgvlm-model with --features cuda (candle kernels via nvcc)"
cargo build --release -p sgvlm-model --features cuda

# 4. Stub libcuda.so: one empty function per driver symbol (cu[A-Z]*) cudarc leaves undefined.
RLIB="$(ls -t "$CARGO_TARGET_DIR"/release/deps/libcudarc-*.rlib | head -n 1)"
STUB_C="$LINKDIR/libcuda_stub.c"
nm --undefined-only "$RLIB" 2>/dev/null | awk '{print $NF}' | grep -E '^cu[A-Z][A-Za-z0-9_]*$' | sort -u \
    | awk '{printf "int %s(void) { return 999; }\n", $1}' >"$STUB_C"
log "stub libcuda.so with $(wc -l <"$STUB_C") driver symbols"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINKDIR/libcuda.so" "$STUB_C"

# 5. The binary.
log "building sgvlm with --features cuda"
cargo build --release -p sgvlm-cli --features cuda
log "building the cuda_check example"
cargo build --release -p sgvlm-model --features cuda --example cuda_check
mkdir -p "$ROOT/dist/cuda"
strip -o "$ROOT/dist/cuda/sgvlm" "$CARGO_TARGET_DIR/release/sgvlm"
strip -o "$ROOT/dist/cuda/cuda_check" "$CARGO_TARGET_DIR/release/examples/cuda_check"
# Gzipped copies for the device call, which carries at most 64 MiB with the working tree: the GPU scripts unpack
# dist/cuda-gz/*.gz into dist/cuda when the binaries themselves were not carried.
mkdir -p "$ROOT/dist/cuda-gz"
for b in sgvlm cuda_check; do gzip -6 -c "$ROOT/dist/cuda/$b" >"$ROOT/dist/cuda-gz/$b.gz"; done
SIZE=$(du -cb "$ROOT"/dist/cuda-gz/*.gz | tail -n 1 | cut -f 1)
log "dist/cuda: $(ls -s --block-size=M "$ROOT"/dist/cuda | tr '\n' ' '); gzipped in dist/cuda-gz: $((SIZE / 1048576)) MiB"
if [ "$SIZE" -gt $((48 * 1048576)) ]; then
    log "dist/cuda-gz over 48 MiB: with the working tree the device call carries at most 64 MiB"
    exit 1
fi
log "needs at run time: $(objdump -p "$ROOT/dist/cuda/sgvlm" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')"

# 6. What scripts/gpu_bench.sh needs besides the binaries, since the GPU machine has neither the tokenizer package
# nor ../shared: the real-vocabulary tokenizer (gzipped) and the transformers baselines, in dist/bench.
mkdir -p "$ROOT/dist/bench"
if TOK="$(bash "$ROOT/scripts/qwen35_tokenizer.sh" 2>/dev/null)" && [ -s "$TOK" ]; then
    gzip -6 -c "$TOK" >"$ROOT/dist/bench/tokenizer.json.gz"
else
    log "could not build the Qwen3.5 tokenizer: the GPU bench will use the tiny vocabulary"
fi
for f in "$ROOT"/../shared/bench/*.py; do [ -f "$f" ] && cp -f "$f" "$ROOT/dist/bench/"; done
log "dist/bench: $(ls "$ROOT/dist/bench" | tr '\n' ' ')"
