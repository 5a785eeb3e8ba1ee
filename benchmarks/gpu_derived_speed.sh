#!/usr/bin/env bash
# Issue 13 on the GPU machine, run alone on the GPU right after the derived table (benchmarks/gpu_table.sh):
#  1. K=1: three int8 derived candidates (width 0.5/0.75/1.0, sparsity 0, 320 ms, 2 epochs) one at a
#     time, the same settings as the table's K=8 rows, for trials per GPU-hour at K=1 against K=8;
#  2. the fidelity curve of the derived int8 candidate at width 0.5: 12 fine-tune epochs alone on the
#     GPU, dev WER and seconds after each, for the time to within 0.01 of its 12-epoch WER.
# Needs the wheels in /tmp/site, the grid corpus (gpu_table.sh builds it) and runs/base-5m.
#   OUT=/tmp/out bash benchmarks/gpu_derived_speed.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 EDGETUNE_CACHE=$PWD/.cache PYTHONPATH=${PYTHONPATH:-/tmp/site}:$PWD
grid() {  # name epochs grid-json
  mkdir -p "$OUT/$1"
  python3 benchmarks/gpu_grid.py grid --out "$OUT/$1" --trials-dir "/tmp/speed-$1" --dataset grid \
    --base runs/base-5m --lr 1e-3 --epochs "$2" --batch-size 64 --workers 1 --cores-per-worker 2 \
    --bench-runs 100 --bench-warmup 10 --record-parity-failures --time-budget 400 --grid "$3" > "$OUT/$1/grid.log" 2>&1
  echo "$1 exit $?"; tail -2 "$OUT/$1/grid.log"
}
grid k1 2 '{"bits": [8], "sparsity": [0.0], "depth_multiplier": [0.5, 0.75, 1.0], "chunk_ms": [320]}'
grid curve-w0.5 12 '{"bits": [8], "sparsity": [0.0], "depth_multiplier": [0.5], "chunk_ms": [320]}'
