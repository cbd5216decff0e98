#!/usr/bin/env bash
# GPU readiness: fill and training throughput of every architecture in bf16 on CUDA, printed as
# one Markdown table for the README, in under 5 minutes on a fresh machine from the repository's
# root or anywhere else:
#
#     bash benchmarks/gpu_check.sh                 # CUDA: every paper and small config
#     bash benchmarks/gpu_check.sh --quick         # the CPU: tiny sizes, three small configs
#
# Other arguments go to benchmarks/gpu_check.py (--model ARCH:CONFIG, --train-batch N, ...; see
# its --help). GPU_CHECK_SECONDS (default 280) is the whole run's budget, set-up included; the
# measurement stops itself within it and lists what it skipped. PYTHON names the interpreter
# (default python3).
#
# Set-up, idempotent and quiet: this working tree's package is used (PYTHONPATH), torch 2.13.0 is
# installed only where no torch imports, the package's dependencies (pip install -e .) only where
# they do not import; anything still missing stops the script with one line.
set -uo pipefail

budget=${GPU_CHECK_SECONDS:-280}
python=${PYTHON:-python3}
modules="torch, numpy, cv2, PIL, safetensors, typer, rich, inpaint_cli.fill, inpaint_cli.train"

fail() {
    echo "gpu_check: error: $*" >&2
    exit 1
}

importable() {
    "$python" -c "import $1" >/dev/null 2>&1
}

cd "$(dirname "$0")/.." || fail "cannot enter the repository"
command -v "$python" >/dev/null || fail "no $python on PATH (set PYTHON=/path/to/python)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! importable "$modules"; then
    if ! importable torch; then
        "$python" -m pip install -q torch==2.13.0 >/dev/null 2>&1 \
            || fail "torch does not import and 'pip install torch==2.13.0' failed (offline? install a CUDA build of torch first)"
    fi
    if ! importable "$modules"; then
        "$python" -m pip install -q -e . >/dev/null 2>&1 \
            || fail "the package's dependencies do not import and 'pip install -e .' failed (offline?)"
        importable "$modules" || fail "inpaint_cli does not import after 'pip install -e .': $("$python" -c "import $modules" 2>&1 | tail -n 1)"
    fi
fi

quick=false
for argument in "$@"; do
    [ "$argument" = --quick ] && quick=true
done
if ! $quick; then
    "$python" -c "import sys, torch; sys.exit(not torch.cuda.is_available())" \
        || fail "CUDA is not available to torch (no GPU, or a CPU build of torch); --quick runs on the CPU"
fi

left=$((budget - SECONDS))
[ "$left" -ge 60 ] || fail "set-up took ${SECONDS} s of the ${budget} s budget: too little left to measure"
# gpu_check.py stops itself by its --budget (a measurement started may run on a little); the timeout is the backstop
timeout --kill-after=10 "$((left - 5))" "$python" benchmarks/gpu_check.py --budget "$((left - 30))" "$@"
status=$?
case $status in
    124 | 137) fail "stopped at the ${budget} s limit; the rows above were measured" ;;
esac
exit "$status"
