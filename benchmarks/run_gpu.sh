#!/usr/bin/env bash
# The GPU check in one call of at most 6 minutes on a lent H100/H200 (see benchmarks/README.md).
#
#   run(command="bash benchmarks/run_gpu.sh", timeout_s=420)        # from the device tool
#   OUT=/tmp/out bash benchmarks/run_gpu.sh                          # on any CUDA machine
#   bash benchmarks/run_gpu.sh --dry-run                             # any machine, no GPU needed
#
# Phases, each under a hard budget (timeout -k: TERM at the budget, KILL 5 s later), each
# writing its own files to $OUT as it ends, none able to stop the others (no set -e; a phase
# that crashes -- an import that dies with SIGSEGV, a kernel that takes the process down --
# is recorded with its exit status and the next phase starts).  $OUT/phases.tsv gets one line
# per phase as it finishes: name, budget_s, exit status (124/137: stopped at its budget),
# wall seconds.  The budgets add up to TOTAL_S (default 340 s); a phase that would start
# past it is recorded as skipped.
#
#   card            nvidia-smi                                                       10 s
#   versions        each framework imported in its own process                        30 s
#   conf-triton     conformance, focalspec-triton compiled for CUDA (quick)           50 s
#   conf-pallas     conformance, focalspec-pallas compiled for CUDA (quick)           40 s
#   conf-torch      conformance, focalspec-torch and torchvision on CUDA (quick)      35 s
#   bench-eager     focalspec-triton, torchvision, focalspec-torch eager             90 s
#   bench-compiled  torchvision and focalspec-torch under torch.compile, float32      50 s
#   bench-pallas    focalspec-pallas (JAX in its own process: a fault there keeps
#                   the torch rows)                                                  35 s
#
# The GPU image has Python 3.12, torch 2.11 + triton 3.6, jax 0.11.2 (CUDA), torchvision
# 0.26, pytest, mpmath, ml-dtypes, hypothesis, rich, optax, and no TensorFlow; nothing can be
# fetched there (carried wheels in .whl/ are installed if present).  focalspec is made
# importable from this checkout through a symlinked package tree in /tmp.
#
# --dry-run runs every phase on the CPU instead (kernels interpreted, small sizes): the same
# commands, imports and budgets, to rehearse the script on a machine without a GPU.
# Settings by environment variable: SIZES, DTYPES (bench-eager), TOTAL_S, BUDGET_<PHASE>
# (e.g. BUDGET_CONF_TRITON=60), FAIL_PHASE=<name> (that phase's command is replaced by a
# process that kills itself with SIGSEGV: tests/test_run_gpu_dry.py checks the others survive).
set -uo pipefail

DRY=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) DRY=1 ;;
        *) echo "run_gpu: unknown argument $arg (only --dry-run)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD
OUT=${OUT:-$ROOT/benchmarks/results/gpu-out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
TOTAL_S=${TOTAL_S:-340}
START=$SECONDS
log() { echo "run_gpu: $*" >&2; }
printf 'phase\tbudget_s\texit\twall_s\n' >"$OUT/phases.tsv"

# phase NAME BUDGET CMD...: run CMD under the budget, its output in $OUT/NAME.log; never fails
phase() {
    local name=$1 budget=$2
    shift 2
    local var="BUDGET_$(echo "$name" | tr '[:lower:]-' '[:upper:]_')"
    budget=${!var:-$budget}
    local left=$((TOTAL_S - (SECONDS - START)))
    if [ "$left" -lt 5 ]; then
        log "$name: skipped (${TOTAL_S}s used)"
        printf '%s\t%s\tskipped\t0\n' "$name" "$budget" >>"$OUT/phases.tsv"
        return 0
    fi
    [ "$budget" -gt "$left" ] && budget=$left
    if [ "${FAIL_PHASE:-}" = "$name" ]; then
        set -- "$PY" -c "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    fi
    log "$name: up to ${budget}s"
    local t0=$SECONDS
    timeout -k 5 "$budget" "$@" >"$OUT/$name.log" 2>&1 </dev/null
    local rc=$?
    local wall=$((SECONDS - t0))
    printf '%s\t%s\t%s\t%s\n' "$name" "$budget" "$rc" "$wall" >>"$OUT/phases.tsv"
    log "$name: exit $rc after ${wall}s$([ "$rc" = 124 ] || [ "$rc" = 137 ] && echo ' (stopped at its budget)')"
    tail -n 3 "$OUT/$name.log" >&2
    return 0
}

# --- carried wheels (optional) and focalspec from this checkout ---------------------------
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
# pyproject.toml maps the top-level folders onto one namespace (cli/ is `focalspec`, spec/ is
# `focalspec.spec`, ...); a symlinked tree gives the same layout to PYTHONPATH
PKG=$(mktemp -d /tmp/focalspec-pkg.XXXXXX)
mkdir "$PKG/focalspec"
for f in cli/*.py; do ln -s "$ROOT/$f" "$PKG/focalspec/"; done
for part in spec reference certified adapters kernels conformance benchmarks reports; do
    [ -d "$ROOT/$part" ] && ln -s "$ROOT/$part" "$PKG/focalspec/$part"
done
export PYTHONPATH=$PKG${PYTHONPATH:+:$PYTHONPATH}
if [ -z "${FOCALSPEC_GIT_REVISION:-}" ] && git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
    FOCALSPEC_GIT_REVISION=$(git -C "$ROOT" rev-parse HEAD)
fi
export FOCALSPEC_GIT_REVISION=${FOCALSPEC_GIT_REVISION:-}

# --- environment: honest float32, frameworks sharing one GPU ---------------------------
export PYTHONUNBUFFERED=1
export NVIDIA_TF32_OVERRIDE=0               # no TF32 anywhere a float32 number is claimed
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # JAX would otherwise take 75% of the GPU from torch
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-cache

if [ "$DRY" = 1 ]; then
    DEV=cpu
    export TRITON_INTERPRET=1 CUDA_VISIBLE_DEVICES=""
    SIZES=${SIZES:-2^12}
    TRITON_MODE=triton-interpret PALLAS_MODE=pallas-interpret EAGER_MODES="eager triton-interpret"
    CONF_DTYPES=(--focal-dtypes float32)
    BENCH_TIME=(--min-time 0.02 --min-reps 2)
else
    DEV=cuda
    unset TRITON_INTERPRET
    SIZES=${SIZES:-2^20,2^24,2^26}
    TRITON_MODE=eager PALLAS_MODE=eager EAGER_MODES=eager
    CONF_DTYPES=()
    BENCH_TIME=(--min-time 0.2)
fi
DTYPES=${DTYPES:-float32 bfloat16 float16}
GPU_NAME="dry-run (no GPU used)"
if [ "$DRY" = 0 ]; then
    GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1)
fi
GPU_SLUG=$(echo "${GPU_NAME:-cuda}" | tr '[:upper:]' '[:lower:]' | sed -e 's/^nvidia //' -e 's/[^a-z0-9]\+/-/g' -e 's/^-//' -e 's/-$//')
STEM="gpu-$(date -u +%Y-%m-%d)-${GPU_SLUG:-cuda}"
log "device: ${GPU_NAME:-none found} -> $OUT (phases in $OUT/phases.tsv)"

# the suite's pytest plugin comes from focalspec's entry point when focalspec is installed;
# from the symlinked tree it has to be named
CONF=("$PY" -m pytest --pyargs focalspec.conformance -q -p no:cacheprovider --focal-depth quick
      --focal-devices "$DEV" "${CONF_DTYPES[@]}")
if ! "$PY" -c "import sys; from importlib.metadata import entry_points as e; \
sys.exit(not any(p.value.startswith('focalspec.') for p in e(group='pytest11')))" 2>/dev/null; then
    CONF+=(-p focalspec.conformance.suite.plugin)
fi
BENCH=("$PY" -m focalspec bench --device "$DEV" --sizes "$SIZES" "${BENCH_TIME[@]}")

# --- the phases -------------------------------------------------------------------------
if [ "$DRY" = 1 ]; then
    phase card 10 "$PY" -c "print('dry run: no GPU used')"
else
    phase card 10 nvidia-smi
fi
# one process per framework: an import that crashes (torch and TensorFlow together died with
# SIGSEGV on one machine) costs its own line only
phase versions 30 bash -c '
    "$0" -c "import platform, numpy, mpmath, ml_dtypes; print(\"python\", platform.python_version(), \
\"numpy\", numpy.__version__, \"mpmath\", mpmath.__version__, \"ml_dtypes\", ml_dtypes.__version__)"
    timeout -k 2 20 "$0" -c "import torch, triton, torchvision; print(\"torch\", torch.__version__, \"triton\", \
triton.__version__, \"torchvision\", torchvision.__version__, \"cuda\", torch.version.cuda, torch.cuda.is_available())" \
        || echo "torch: failed (exit $?)"
    timeout -k 2 20 "$0" -c "import jax, optax; print(\"jax\", jax.__version__, \"optax\", optax.__version__, jax.devices())" \
        || echo "jax: failed (exit $?)"
' "$PY"
phase conf-triton 50 "${CONF[@]}" --focal-adapters focalspec-triton --focal-modes "$TRITON_MODE" \
    --focal-json "$OUT/conformance-triton.json"
phase conf-pallas 40 "${CONF[@]}" --focal-adapters focalspec-pallas --focal-modes "$PALLAS_MODE" \
    --focal-json "$OUT/conformance-pallas.json"
phase conf-torch 35 "${CONF[@]}" --focal-adapters focalspec-torch,torchvision --focal-modes eager \
    --focal-json "$OUT/conformance-torch.json"
# shellcheck disable=SC2086
phase bench-eager 90 "${BENCH[@]}" --adapter focalspec-triton torchvision focalspec-torch --dtype $DTYPES \
    --mode $EAGER_MODES --deadline 60 --json "$OUT/$STEM-eager.json" --markdown "$OUT/$STEM-eager.md"
phase bench-compiled 50 "${BENCH[@]}" --adapter torchvision focalspec-torch --dtype float32 --mode compiled \
    --sizes "${SIZES##*,}" --deadline 25 --json "$OUT/$STEM-compiled.json" --markdown "$OUT/$STEM-compiled.md"
phase bench-pallas 35 "${BENCH[@]}" --adapter focalspec-pallas --dtype float32 bfloat16 --mode "$PALLAS_MODE" \
    --deadline 20 --json "$OUT/$STEM-pallas.json" --markdown "$OUT/$STEM-pallas.md"

log "done in $((SECONDS - START))s; files in $OUT:"
ls -l "$OUT" >&2
column -t "$OUT/phases.tsv" >&2 2>/dev/null || cat "$OUT/phases.tsv" >&2
exit 0
