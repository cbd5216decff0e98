#!/bin/bash
# The training runs behind the small configs that are still in training (weights/README.md, "In
# training": DeepFill v2's `half` from scratch, whose CPU runs were lost before they passed; the
# bundled DeepFill v2 started from DeepFill v1 instead), side by side, for a fixed wall-clock budget:
# prepared so that a few minutes on a lent GPU go to training, not to set-up. Each run resumes where
# its folder's checkpoint left it, stops itself after MINUTES with a checkpoint and an export
# (`inpaint train --time-limit`), and records the hardware and wall time in that export. Then
# measure and release the export:
#
#     weights/train-small-configs.sh 10                 # 10 minutes, runs under runs/
#     inpaint release runs/dfv2-half/deepfill-v2-half.safetensors --blend poisson
#
# Arguments: MINUTES (default 10), RUNS folder (default runs), DATA folder of training images
# (default $INPAINT_DATA/train). On CUDA every run gets WORKERS loader processes (default: the CPUs
# shared out, at most 4) and bf16 autocast; on a CPU each run gets one thread, niced. Runs train on
# 256-pixel crops, whose holes are as large as the evaluation's: AOT-GAN and LaMa passed the gate
# only after such a stage (weights/README.md).
set -euo pipefail
minutes=${1:-10}
runs=${2:-runs}
data=${3:-${INPAINT_DATA:?set INPAINT_DATA or pass the training images as the third argument}/train}
[ -d "$data" ] || { echo "train-small-configs: error: training images not found: $data" >&2; exit 1; }
note="BSDS500 train+val+test minus the 68 CBSD68 images (432; BSDS terms: research use) and Urban100 (100; terms not stated)"

if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    workers=${WORKERS:-$(( $(nproc) / 5 < 4 ? $(nproc) / 5 : 4 ))}
    batch=32 launch=()
else
    workers=0 batch=8 launch=(env OMP_NUM_THREADS=1 nice -n 10)
fi

# name arch config lr extra-options...: resume the run in $runs/name, else start it
run() {
    local name=$1 arch=$2 config=$3 lr=$4
    shift 4
    local common=(--arch "$arch" --out "$runs/$name" --workers "$workers" --time-limit "$minutes")
    if [ -d "$runs/$name/checkpoint" ]; then
        "${launch[@]}" inpaint train "${common[@]}" --resume > "$runs/$name.log" 2>&1 &
    else
        "${launch[@]}" inpaint train "${common[@]}" --config "$config" --data "$data" --size 256 --batch "$batch" \
            --steps 300000 --lr "$lr" --ema 0.999 --checkpoint-every 250 --sample-every 1000 --seed 21 \
            --masks box --masks irregular:10-60 --masks freeform --data-note "$note" "$@" > "$runs/$name.log" 2>&1 &
    fi
}

mkdir -p "$runs"
# background jobs of a script ignore Ctrl-C: pass it (and TERM) on, so that an interrupted script
# leaves no run behind (each stops at once, keeping its last checkpoint)
trap 'kill -TERM $(jobs -p) 2>/dev/null; wait' INT TERM
# reconstruction only (`--phase-steps` longer than the run): the adversarial phases cost 2-5 x per
# step, and on small budgets they made fills worse (weights/README.md)
run dfv2-half deepfill-v2 half 1e-4 --phase-steps 290000
wait
tail -n 1 "$runs/dfv2-half.log"
