#!/bin/bash
# Issue 39, expert iteration, one round at the shipped scale, each step skipped when done (a
# stopped step resumes): araft-smollm2 samples K runs of each of its 600 training questions on
# llama.cpp (two halves at once, one core each), `convert sft --own-runs 2` keeps its exact runs,
# they join the teacher's records, the shipped recipe trains on them
# (finetune/configs/experiments/sft-q600-own-smollm2.yaml), and the adapter is evaluated as the
# curve's points are (benchmarks/learning_curve_runs.sh eval), against both indexes, with the
# adapter it started from beside it on each (the pairs' other side).
#   benchmarks/expert_iteration_runs.sh [K]      # K: runs a question (default 4)
# One job at a time: start it when no training runs (benchmarks/learning_curve_runs.sh says why).
set -e
cd "$(dirname "$0")/.."
A=.venv/bin/araft
D=${ARAFT_DATA_DIR:-../shared/data/hotpotqa}
K=${1:-4}
mkdir -p runs/ei
# The indexes, the teacher records and the curve's sets, made again where runs/ lacks them.
benchmarks/learning_curve_inputs.sh
# The adapter it starts from is the 600-question araft-smollm2 of 2026-11-29, taken from git (by
# learning_curve_inputs.sh), so that shipping another as araft-smollm2 does not change what this
# round samples with.
q600=runs/adapters/araft-smollm2-q600
[ -f runs/ei/q600-questions/part1.jsonl ] ||
  .venv/bin/python -m benchmarks.self_consistency split --questions $D/dev_distractor_b300.jsonl \
    $D/train_levels_100.json runs/q600/a500-rest-200.jsonl --seed 0 --parts 2 --out runs/ei/q600-questions
pids=()
for k in 0 1; do
  [ -f runs/ei/q600-sample-part$k/report.json ] && continue
  OMP_NUM_THREADS=1 nice -n 5 $A eval --questions runs/ei/q600-questions/part$k.jsonl --corpus runs/idx/old.sqlite \
    --seed 0 --repeats $K --temperature 0.7 --max-new-tokens 128 --concurrency 8 --model araft-smollm2 --adapter $q600 \
    --out runs/ei/q600-sample-part$k > runs/ei/q600-sample-part$k.log 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait $p; done
[ -f runs/ei/q600-own.jsonl ] ||
  $A convert sft runs/ei/q600-sample-part{0,1}/trajectories.jsonl --own-runs 2 --out runs/ei/q600-own.jsonl \
    --prompt-style zeroshot_turns --granularity trajectory --tokenizer smollm2-135m | tee runs/ei/q600-own.txt
[ -f runs/ei/q600.jsonl ] ||
  .venv/bin/python -m benchmarks.learning_curve --base runs/q600/sft.jsonl --more runs/q2838/sft-new.jsonl \
    --questions 600 --extra runs/ei/q600-own.jsonl --seed 0 --out runs/ei | tee runs/ei/q600-set.json
out=runs/adapters/sft-q600-own
if [ ! -f $out/summary.json ]; then
  resume=""; ls -d $out/checkpoint-* > /dev/null 2>&1 && resume="--resume"
  nice -n 10 $A train sft --config finetune/configs/experiments/sft-q600-own-smollm2.yaml $resume >> runs/ei/train.log 2>&1
fi
# Each index: the new adapter, then the one it started from (the pairs' other side), old index first.
for index in old all; do
  for name in q600own shipped; do
    adapter=$out; [ $name = shipped ] && adapter=$q600
    [ -f runs/eval-curve/$name-$index-part0/report.json ] && [ -f runs/eval-curve/$name-$index-part1/report.json ] ||
      benchmarks/learning_curve_runs.sh eval $name $index --model araft-smollm2 --adapter $adapter
  done
done
