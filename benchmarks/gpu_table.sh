#!/usr/bin/env bash
# One command on the GPU machine (issue 15 part 2): the frozen table of candidates derived from
# the ~5 M base (runs/base-5m), through benchmarks/gpu_grid.py grid mode: every configuration of
# $GRID is pruned, QAT fine-tuned with distillation for $EPOCHS epochs (dev WER after each),
# exported and measured on the file (test WER in ONNX Runtime, latency on this machine's CPU, one
# ORT thread on cores of its own). Rows that fail the export parity gate are kept, marked
# parity_passed=false. Resumable: pass the grid.jsonl of an earlier call as RESUME (carried).
# New configurations stop starting after TIME_BUDGET seconds. Needs the wheels in .whl.
#   OUT=/tmp/out TIME_BUDGET=480 bash benchmarks/gpu_table.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 EDGETUNE_CACHE=$PWD/.cache PYTHONPATH=${PYTHONPATH:-/tmp/site}:$PWD
GRID=${GRID:-'{"bits": [4, 8, 16, 32], "sparsity": [0.0, 0.25, 0.5, 0.75], "depth_multiplier": [0.5, 0.75, 1.0], "chunk_ms": [160, 320, 640, 1280]}'}
t0=$(date +%s)
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  lscpu | grep -E 'Model name'; git rev-parse HEAD 2>/dev/null
  python3 -c "import torch, onnxruntime, optuna; print('torch', torch.__version__, 'ort', onnxruntime.__version__, 'optuna', optuna.__version__)"; } > "$OUT/host.txt" 2>&1
python3 -m edgetune corpus --preset "${DATASET:-grid}" --workers 16 --no-progress > "$OUT/corpus.log" 2>&1 || { tail "$OUT/corpus.log"; exit 2; }
echo "corpus_seconds $(( $(date +%s) - t0 ))" | tee -a "$OUT/host.txt"
python3 benchmarks/gpu_grid.py grid --out "$OUT" --trials-dir /tmp/table-trials --dataset "${DATASET:-grid}" \
  --base runs/base-5m --lr "${LR:-1e-3}" --epochs "${EPOCHS:-3}" --batch-size "${BATCH:-64}" \
  --workers "${WORKERS:-8}" --cores-per-worker 2 --bench-runs 100 --bench-warmup 10 --record-parity-failures \
  --time-budget "${TIME_BUDGET:-480}" --grid "$GRID" ${RESUME:+--resume-from "$RESUME"} > "$OUT/grid.log" 2>&1
echo "grid exit $? at $(( $(date +%s) - t0 )) s" | tee -a "$OUT/host.txt"
tail -3 "$OUT/grid.log"; grep -c '"ok": true' "$OUT/grid.jsonl"
