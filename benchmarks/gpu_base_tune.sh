#!/usr/bin/env bash
# Issue 19 on the GPU machine: benchmarks/base_tune_compare.py with configs/base-tune-5m-grid.yaml
# (random, TPE + Hyperband and PBT, 2 processes and BUDGET seconds each side by side, then every best
# recipe and the default retrained at FINAL_EPOCHS over 3 seeds). Resumable while the machine is warm
# (runs/tune-compare stays); results are copied to $OUT. Needs the wheels in /tmp/site.
#   OUT=/tmp/out BUDGET=150 FINAL_EPOCHS=16 [METRIC=dev_loss DIR=runs/tune-compare-loss] bash benchmarks/gpu_base_tune.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 EDGETUNE_CACHE=$PWD/.cache PYTHONPATH=${PYTHONPATH:-/tmp/site}:$PWD
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  git rev-parse HEAD 2>/dev/null; python3 -c "import torch, optuna; print('torch', torch.__version__, 'optuna', optuna.__version__)"
} > "$OUT/host.txt" 2>&1
t0=$(date +%s)
python3 -m edgetune corpus --preset grid --workers 16 --no-progress > "$OUT/corpus.log" 2>&1 || { tail "$OUT/corpus.log"; exit 2; }
echo "corpus_seconds $(( $(date +%s) - t0 ))" | tee -a "$OUT/host.txt"
MACHINE="lent nvidia-h200 ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), $(nproc) cores)" \
  python3 benchmarks/base_tune_compare.py --config configs/base-tune-5m-grid.yaml --out "${DIR:-runs/tune-compare}" ${METRIC:+--metric $METRIC} \
  --budget "${BUDGET:-150}" --workers 2 --final-epochs "${FINAL_EPOCHS:-16}" --seeds 0 1 2 > "$OUT/compare.log" 2>&1
rc=$?; echo "compare exit $rc at $(( $(date +%s) - t0 )) s" | tee -a "$OUT/host.txt"
mkdir -p "$OUT/tune-compare"
tar czf "$OUT/tune-compare.tgz" -C "${DIR:-runs/tune-compare}" --exclude='*/checkpoints/*' --exclude='*.onnx' --exclude='*.safetensors' .
( cd "${DIR:-runs/tune-compare}" && find . \( -name '*.json' -o -name '*.md' -o -name '*.log' -o -name '*.yaml' -o -name '*.html' \) \
    -not -path '*/checkpoints/*' -size -2M -print0 | xargs -0 -r cp --parents -t "$OUT/tune-compare" )
tail -20 "$OUT/compare.log"
