#!/usr/bin/env bash
# The whole GPU benchmark in one call on a lent device machine (see benchmarks/README.md).
#
#   run(command="bash benchmarks/run_gpu.sh", timeout_s=600)          # from the device tool
#   OUT=/tmp/out bash benchmarks/run_gpu.sh                            # on any CUDA machine
#   bash benchmarks/run_gpu.sh --dry-run                               # any machine, no GPU needed
#
# --dry-run does everything a GPU run does except touch a GPU: it builds the package tree,
# imports every framework and focalspec.kernels, runs the conformance suite on CPU for the
# Triton kernel under the interpreter (float32, quick depth; focalspec-torch without triton)
# and checks that the bench command line parses, then prints the GPU commands and exits 0.
#
# Installs nothing from the network: it uses the python3 that holds PyTorch/JAX there,
# makes focalspec importable from this checkout through a symlinked package tree in /tmp,
# and installs carried wheels only if a .whl/ folder travelled with the tree.  Writes to
# $OUT: gpu-<date>-<gpu>.json (focalspec-bench schema), the same as a markdown table,
# the full log and nvidia-smi's view of the card.  Settings by environment variable:
#   SIZES     element counts            (default 2^12,2^16,2^20,2^24,2^26,2^28)
#   DTYPES    dtypes, space-separated   (default "float32 bfloat16 float16")
#   MODES     modes, space-separated    (default "eager compiled")
#   ADAPTERS  adapter names             (default: every adapter that sees the GPU)
#   DEADLINE  seconds after which no new measurement starts (default 420: the device
#             tool stops a command at 600 s; a measurement at 2^28 with compilation and the
#             float64 reference check can take a minute)
#   MIN_TIME  timed seconds per measurement (default 0.2)
#   CONFORMANCE_S  seconds for the CUDA conformance run before the bench (default 150; 0: skip)
#   FOCALSPEC_GIT_REVISION  the commit, recorded in the JSON when the tree has no .git
set -euo pipefail

DRY=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        *) echo "run_gpu: unknown argument $arg (only --dry-run)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-$ROOT/benchmarks/results/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
SIZES=${SIZES:-2^12,2^16,2^20,2^24,2^26,2^28}
DTYPES=${DTYPES:-float32 bfloat16 float16}
MODES=${MODES:-eager compiled}
DEADLINE=${DEADLINE:-420}
MIN_TIME=${MIN_TIME:-0.2}
CONFORMANCE_S=${CONFORMANCE_S:-150}

log() { echo "run_gpu: $*" >&2; }

# --- the card -------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
    GPU_NAME="dry-run (no GPU used)"
elif ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    log "no NVIDIA GPU visible (nvidia-smi -L failed): this script is for a CUDA machine (or pass --dry-run)"
    exit 3
else
    nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
    GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
fi
GPU_SLUG=$(echo "$GPU_NAME" | tr '[:upper:]' '[:lower:]' | sed -e 's/^nvidia //' -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')
DATE=$(date -u +%Y-%m-%d)
STEM="gpu-$DATE-${GPU_SLUG:-cuda}"
log "GPU: $GPU_NAME -> $OUT/$STEM.{json,md}"

# --- carried wheels (optional; README of the device tool) -------------------------------
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# --- focalspec from this checkout, without installing it --------------------------------
# pyproject.toml maps the top-level folders onto one namespace (cli/ is `focalspec`,
# spec/ is `focalspec.spec`, ...); a symlinked tree gives the same layout to PYTHONPATH.
PKG=$(mktemp -d /tmp/focalspec-pkg.XXXXXX)
mkdir "$PKG/focalspec"
for f in cli/*.py; do ln -s "$ROOT/$f" "$PKG/focalspec/"; done
for part in spec reference adapters kernels conformance reports; do
    [ -d "$ROOT/$part" ] && ln -s "$ROOT/$part" "$PKG/focalspec/$part"
done
export PYTHONPATH=$PKG${PYTHONPATH:+:$PYTHONPATH}
if [ -z "${FOCALSPEC_GIT_REVISION:-}" ] && git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
    FOCALSPEC_GIT_REVISION=$(git -C "$ROOT" rev-parse HEAD)
fi
export FOCALSPEC_GIT_REVISION=${FOCALSPEC_GIT_REVISION:-}

# --- environment: honest float32, frameworks sharing one GPU ---------------------------
export PYTHONUNBUFFERED=1
export NVIDIA_TF32_OVERRIDE=0             # no TF32 anywhere a float32 number is claimed
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX would otherwise take 75% of the GPU from torch
export TF_CPP_MIN_LOG_LEVEL=2
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-cache

"$PY" - <<'PYEOF' 2>&1 | tee "$OUT/versions.txt"
import importlib, platform
print("python", platform.python_version())
for name in ("numpy", "torch", "jax", "jaxlib", "tensorflow", "keras", "torchvision", "optax", "triton"):
    try:
        mod = importlib.import_module(name)
        print(name, getattr(mod, "__version__", "?"))
    except Exception as exc:
        print(name, "not available:", type(exc).__name__)
try:
    import torch
    print("torch.cuda", torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0))
except Exception as exc:
    print("torch.cuda not available:", exc)
import focalspec.conformance.bench  # noqa: F401  (fails loudly if the tree is not importable)
import focalspec.kernels.torch  # noqa: F401
PYEOF

# --- conformance on CUDA (native Triton kernels: no interpreter) ------------------------
unset TRITON_INTERPRET
CONF=(-m pytest --pyargs focalspec.conformance -q -p no:cacheprovider --focal-depth quick
      --focal-json "$OUT/conformance-cuda.json")
# the suite's pytest plugin comes from focalspec's entry point when focalspec is installed;
# from the symlinked tree it has to be named
if ! "$PY" -c "import sys; from importlib.metadata import entry_points as e; \
sys.exit(not any(p.value.startswith('focalspec.') for p in e(group='pytest11')))"; then
    CONF+=(-p focalspec.conformance.plugin)
fi
if [ "$DRY" = 1 ]; then
    # the interpreted Triton kernel where triton is installed, else focalspec-torch eager (no compile: seconds)
    if "$PY" -c "import triton" >/dev/null 2>&1; then
        DRY_ADAPTER=focalspec-triton DRY_MODE=triton-interpret
    else
        DRY_ADAPTER=focalspec-torch DRY_MODE=eager
    fi
    log "dry run: conformance on CPU ($DRY_ADAPTER, $DRY_MODE, float32, quick)"
    set +e
    TRITON_INTERPRET=1 "$PY" "${CONF[@]/conformance-cuda/conformance-dry}" --focal-devices cpu --focal-dtypes float32 \
        --focal-adapters "$DRY_ADAPTER" --focal-modes "$DRY_MODE" 2>&1 | tail -n 8 | tee "$OUT/conformance-dry.txt"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" != 0 ]; then log "dry run: the conformance step failed ($rc)"; exit "$rc"; fi
elif [ "$CONFORMANCE_S" != 0 ]; then
    log "conformance on CUDA for every adapter with a CUDA path (${CONFORMANCE_S}s at most)"
    set +e
    # quick is eager-only unless the modes are named: on the GPU the compiled mode is the point
    timeout "$CONFORMANCE_S" "$PY" "${CONF[@]}" --focal-devices cuda --focal-modes eager,compiled 2>&1 | tail -n 40 | tee "$OUT/conformance-cuda.txt"
    log "conformance exited ${PIPESTATUS[0]} (124: stopped at ${CONFORMANCE_S}s; the snapshot JSON holds what ran)"
    set -e
fi

# --- the run ----------------------------------------------------------------------------
ARGS=(bench --device cuda --sizes "$SIZES" --min-time "$MIN_TIME" --deadline "$DEADLINE"
      --json "$OUT/$STEM.json" --markdown "$OUT/$STEM.md")
# shellcheck disable=SC2206
ARGS+=(--dtype $DTYPES --mode $MODES)
if [ -n "${ADAPTERS:-}" ]; then
    # shellcheck disable=SC2206
    ARGS+=(--adapter $ADAPTERS)
fi
log "python3 -m focalspec ${ARGS[*]}"
if [ "$DRY" = 1 ]; then
    "$PY" -c "import argparse, sys; from focalspec.conformance import bench_cli as b; p = argparse.ArgumentParser(); \
b.add_arguments(p); p.parse_args(sys.argv[2:])" -- "${ARGS[@]:1}"
    log "dry run: the bench command line parses; on a GPU this runs it, then writes $OUT/$STEM.{json,md}"
    exit 0
fi
set +e
"$PY" -m focalspec "${ARGS[@]}" 2>&1 | tee "$OUT/bench-log.txt"
rc=${PIPESTATUS[0]}
set -e
# rc 0: all correct; 1: some result was wrong (see the table); 2: usage/nothing to measure
log "focalspec bench exited $rc; files in $OUT:"
ls -l "$OUT" >&2
[ -f "$OUT/$STEM.md" ] && cat "$OUT/$STEM.md"
exit "$rc"
