#!/usr/bin/env bash
# Train the committed demo base (models/demo) and the ~5 M base on one GPU machine, side by side.
# Resumable: each `edgetune base train` checkpoints every epoch and pauses at --max-minutes (exit 75);
# running this script again continues both from their checkpoints.
#   OUT=/tmp/out MAX_MINUTES=6 bash benchmarks/gpu_bases.sh
set -uo pipefail
OUT=${OUT:-runs/gpu-bases}
MAX=${MAX_MINUTES:-6}
PY=${PYTHON:-python3}
export EDGETUNE_CACHE=${EDGETUNE_CACHE:-/tmp/edgetune-cache}
mkdir -p "$OUT" runs
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; } > "$OUT/host.txt" 2>&1
t0=$(date +%s)
$PY -m edgetune corpus --preset base --no-progress >> "$OUT/corpus.log" 2>&1 || { echo "corpus failed"; cat "$OUT/corpus.log"; exit 2; }
echo "corpus_seconds $(( $(date +%s) - t0 ))" | tee -a "$OUT/host.txt"
train() {  # name config
  $PY -m edgetune base train --config "$2" --out "runs/base-$1" --max-minutes "$MAX" --no-progress >> "$OUT/$1.log" 2>&1
  echo "$1 rc=$? at $(( $(date +%s) - t0 )) s" | tee -a "$OUT/host.txt"
}
train demo configs/base-demo.yaml & train 5m configs/base-5m.yaml & wait
