#!/usr/bin/env bash
# One command on the GPU machine (issue 12): a study of candidates derived from the ~5 M base
# (configs/gpu-derived.yaml, $WORKERS workers on cores 0-11) and, beside it, the from-base vs
# scratch benchmark (benchmarks/from_base.py, $BENCH_JOBS jobs at a time on cores 12-15), both
# stopped by TOTAL_SECONDS (the study with Ctrl-C: running trials are marked interrupted and
# retried on resume; finished benchmark jobs are kept in from_base.jsonl). Needs runs/base-5m and
# the wheels in .whl. BENCH_JOBS=0 runs the study alone, on every core. Results in $OUT: study.tgz, from_base.tgz, logs.tgz.
#   OUT=/tmp/out TOTAL_SECONDS=330 bash benchmarks/gpu_derived.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 EDGETUNE_CACHE=$PWD/.cache PYTHONPATH=${PYTHONPATH:-/tmp/site}:$PWD
W=/tmp/gd; mkdir -p "$W"
TOTAL=${TOTAL_SECONDS:-540}
t0=$(date +%s); left() { echo $(( TOTAL - ($(date +%s) - t0) )); }
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  lscpu | grep -E 'Model name'; python3 -c "import torch, onnxruntime, optuna; print('torch', torch.__version__, 'ort', onnxruntime.__version__, 'optuna', optuna.__version__)"; } > "$W/host.txt" 2>&1
python3 -m edgetune corpus --preset grid --workers 16 --no-progress > "$W/corpus.log" 2>&1 || { cat "$W/corpus.log"; exit 2; }
echo "corpus_seconds $(( $(date +%s) - t0 ))" | tee -a "$W/host.txt"
bench=""; study_cores=0-11
if [ "${BENCH_JOBS:-4}" = 0 ]; then study_cores=0-$(( $(nproc) - 1 )); else  # BENCH_JOBS=0: the study alone
taskset -c 12-15 python3 benchmarks/from_base.py --base runs/base-5m --dataset grid --out "$W/from_base" \
  --concurrency "${BENCH_JOBS:-4}" --base-epochs 1 --scratch-epochs "${SCRATCH_EPOCHS:-10}" --batch-size 64 > "$W/from_base.log" 2>&1 &
bench=$!; fi
timeout -s INT -k 30 $(( $(left) - 50 )) taskset -c $study_cores python3 -m edgetune search --config configs/gpu-derived.yaml \
  --study-dir "$W/study" --workers "${WORKERS:-6}" --gpus 0 > "$W/study.log" 2>&1
echo "search exit $? at $(( $(date +%s) - t0 )) s" | tee -a "$W/host.txt"
python3 -m edgetune report --study-dir "$W/study" --static > "$W/report.log" 2>&1
w=$(( $(left) - 15 )); [ $w -lt 1 ] && w=1
if [ -n "$bench" ]; then
  timeout "$w" tail --pid=$bench -f /dev/null; pkill -P $bench 2>/dev/null; kill $bench 2>/dev/null
  python3 benchmarks/from_base.py --base runs/base-5m --out "$W/from_base" --summary >> "$W/from_base.log" 2>&1
fi
echo "end at $(( $(date +%s) - t0 )) s" | tee -a "$W/host.txt"
grep -E 'trials finished|rror' "$W/study.log" | tail -5; tail -12 "$W/from_base.log"
(cd "$W/study" && tar czf "$OUT/study.tgz" journal.log study.yaml report $(find trials -name result.json) 2>/dev/null)
(cd "$W" && tar czf "$OUT/from_base.tgz" from_base/from_base.jsonl from_base/from_base.json 2>/dev/null)
(cd "$W" && tar czf "$OUT/logs.tgz" host.txt corpus.log study.log from_base.log report.log from_base/job*.log study/workers 2>/dev/null)
ls -la "$OUT"
