#!/usr/bin/env bash
# One command on the lent GPU machine: install carried wheels, build the corpus, run a
# benchmarks/gpu_grid.py mode. Logs and results go to $OUT. Usage:
#   bash benchmarks/gpu_session.sh grid|throughput [gpu_grid.py options...]
set -uo pipefail
export PYTHONUNBUFFERED=1 EDGETUNE_CACHE=/tmp/edgetune-cache
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
mode=$1; shift
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  lscpu | grep -E 'Model name|^CPU\(s\)|Flags' | sed 's/Flags:.*\(avx512_vnni\).*\(amx_int8\).*/Flags: ... \1 ... \2 .../'
  python3 -c "import torch, onnxruntime, optuna; print('torch', torch.__version__, 'ort', onnxruntime.__version__, 'optuna', optuna.__version__)"
} 2>&1 | tee "$OUT/host.txt"
t0=$(date +%s)
python3 -m edgetune corpus --preset "${PRESET:-grid}" --workers 16 --no-progress 2>&1 | tail -5 | tee "$OUT/corpus.log"
echo "corpus: $(( $(date +%s) - t0 )) s" | tee -a "$OUT/corpus.log"
python3 benchmarks/gpu_grid.py "$mode" --out "$OUT" --dataset "${PRESET:-grid}" --device cuda "$@" 2>&1 | tee "$OUT/$mode.log" | grep -vE '^\s*$' | grep -E '^\[|Error|error|Traceback' | tail -80
