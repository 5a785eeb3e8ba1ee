#!/usr/bin/env bash
# One command on the lent GPU machine: install carried wheels, build the corpus, run a
# benchmarks/gpu_grid.py mode or an edgetune study. Logs and results go to $OUT. Usage:
#   bash benchmarks/gpu_session.sh grid|throughput [gpu_grid.py options...]
#   STUDY_IN=dir STUDY_SECONDS=480 bash benchmarks/gpu_session.sh study CONFIG [edgetune search options...]
# study: resumes the study whose journal.log/study.yaml are in STUDY_IN (if any), stops it with
# Ctrl-C after STUDY_SECONDS (running trials are marked interrupted and retried next time), writes
# the report, and brings journal.log, study.yaml, report/ and trials/*/result.json back in $OUT/study.
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
if [ "$mode" = quant_prune ]; then
  python3 benchmarks/bench_quant_prune.py --out "$OUT/quant_prune-h100.json" "$@" 2>&1 | tail -30 | tee "$OUT/quant_prune.log"
  exit 0
fi
if [ "$mode" = study ]; then
  cfg=$1; shift
  sd=/tmp/edgetune-study
  mkdir -p "$sd"
  if [ -n "${STUDY_IN:-}" ] && [ -d "$STUDY_IN" ]; then cp -r "$STUDY_IN"/. "$sd"/; fi
  timeout -s INT -k 90 "${STUDY_SECONDS:-480}" python3 -m edgetune search --config "$cfg" --study-dir "$sd" "$@" \
    > "$OUT/study.log" 2>&1
  echo "search exit: $?" | tee -a "$OUT/study.log"
  grep -E '^#|^study|error|Error' "$OUT/study.log" | tail -80
  python3 -m edgetune report --study-dir "$sd" 2>&1 | tail -3
  mkdir -p "$OUT/study"
  cp "$sd/journal.log" "$sd/study.yaml" "$OUT/study/" && cp -r "$sd/report" "$OUT/study/"
  (cd "$sd" && find trials -name result.json | tar -czf "$OUT/study/results.tgz" -T -)
  exit 0
fi
python3 benchmarks/gpu_grid.py "$mode" --out "$OUT" --dataset "${PRESET:-grid}" --device cuda "$@" 2>&1 | tee "$OUT/$mode.log" | grep -vE '^\s*$' | grep -E '^\[|Error|error|Traceback' | tail -80
