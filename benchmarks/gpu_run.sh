#!/usr/bin/env bash
# One prepared run on a borrowed GPU machine (the `device` tool): correctness on CUDA, hot-path
# speed, and rMD17 MACE trainings at the paper's widths. Everything lands under $OUT (at most 8
# files come back). Data: the rMD17 split files copied into ./gpu_data (git-ignored, carried).
#
#   1. smoke: a tiny MACE training on CUDA end to end (fails fast, so a rerun still fits);
#   2. benchmarks/gpu_speed.py alone on the GPU (tensor product vs e3nn, MACE E+F, N-body models);
#   3. four MACE trainings side by side (the GPU is launch-bound at these sizes), each annealed
#      over the same time budget (scheduler cosine_time), while `symformer check --all --device
#      cuda` and a one-epoch Lightning N-body training on the GPU run beside them.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
OUT=${OUT:-/tmp/gpu_out}
MIN=${TRAIN_MIN:-5.0}          # minutes of training per run
ACCEL=${ACCEL:-gpu}             # ACCEL=cpu DEV=cpu TRAIN_MIN=0.02 LIMIT="--limit-train 10" QUICK=--quick:
DEV=${DEV:-cuda}                # a dry run of this script on a CPU machine
LIMIT=${LIMIT:-}
QUICK=${QUICK:-}
mkdir -p "$OUT" runs_gpu
S=$OUT/summary.txt
{ date; nvidia-smi -L; python3 -c "import torch, e3nn, lightning; print('torch', torch.__version__,
'e3nn', e3nn.__version__, 'lightning', lightning.__version__, torch.cuda.get_device_name())"; } >"$S" 2>&1

common=(--data-dir gpu_data --accelerator "$ACCEL" --no-progress)
echo "== smoke" >>"$S"
if ! timeout 150 python3 -m symformer train rmd17 --model mace --molecule ethanol "${common[@]}" \
    --limit-train 16 --epochs 1 --set model.channels=8 --set n_test=64 --out runs_gpu/smoke \
    >>"$S" 2>&1; then
  echo "SMOKE FAILED" >>"$S"; cat "$S"; exit 3
fi

echo "== speed" >>"$S"
timeout 120 python3 benchmarks/gpu_speed.py --device "$DEV" $QUICK --aspirin gpu_data/rmd17_aspirin_test_01.npz \
  --out "$OUT/gpu_speed.json" >>"$S" 2>&1 || echo "speed: exit $?" >>"$S"

train() {  # name molecule channels lmax_hidden batch avg_neighbors
  timeout 480 python3 -m symformer train rmd17 --model mace --molecule "$2" "${common[@]}" \
    --epochs 3000 $LIMIT --set scheduler=cosine_time --set time_limit_min="$MIN" --set lr=0.01 \
    --set batch_size="$5" --set model.channels="$3" --set model.lmax_hidden="$4" \
    --set model.avg_num_neighbors="$6" --out "runs_gpu/$1" >"runs_gpu/$1.log" 2>&1
  echo "$1: exit $?" >>"$S"
}
train ethanol-256-L2-b5 ethanol 256 2 5 8.0 &
train ethanol-128-L1-b16 ethanol 128 1 16 8.0 &
train aspirin-256-L2-b5 aspirin 256 2 5 16.0 &
train aspirin-128-L1-b16 aspirin 128 1 16 16.0 &

echo "== check --all on cuda" >>"$S"
timeout 300 python3 -m symformer check --all --device "$DEV" >>"$S" 2>&1 || echo "check: exit $?" >>"$S"
echo "== nbody on the GPU through Lightning" >>"$S"
timeout 200 python3 -m symformer train nbody --model egnn --epochs 1 --limit-train 300 \
  --accelerator "$ACCEL" --devices 1 --no-progress --out runs_gpu/nbody-egnn >>"$S" 2>&1 \
  || echo "nbody: exit $?" >>"$S"
wait
for d in runs_gpu/*/; do
  n=$(basename "$d"); case $n in smoke|nbody-egnn) continue;; esac
  tail -n 3 "runs_gpu/$n.log" >>"$S" 2>/dev/null
  tar -cf "$OUT/$n.tar" -C runs_gpu --exclude=checkpoints "$n" "$n.log" 2>>"$S"
done
cat "$S"
