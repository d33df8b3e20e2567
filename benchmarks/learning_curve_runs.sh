#!/bin/bash
# Issue 39's long runs on this 2-core machine, one job at a time: a torch training on both cores
# and another job beside it fight over them (its steps ran 6.7x slower beside a one-core eval).
#
#   benchmarks/learning_curve_runs.sh train 1200 2838 2400    # each point in turn; a stopped one resumes
#   benchmarks/learning_curve_runs.sh eval NAME INDEX MODEL_ARGS...
#       # the 300 evaluation questions against runs/idx/INDEX.sqlite, two halves at once (one core each)
#       # -> runs/eval-curve/NAME-INDEX-part{0,1}
#   benchmarks/learning_curve_runs.sh queue 1200 2838 2400    # each point trained, then evaluated on both indexes
#
# The records, indexes and question halves are made first where runs/ lacks them
# (benchmarks/learning_curve_inputs.sh); the adapters go to runs/adapters/sft-q<N>, the logs beside them.
set -e
cd "$(dirname "$0")/.."
A=.venv/bin/araft

train() {
  for n in "$@"; do
    out=runs/adapters/sft-q$n
    [ -f $out/summary.json ] && continue
    resume=""; ls -d $out/checkpoint-* > /dev/null 2>&1 && resume="--resume"
    nice -n 10 $A train sft --config finetune/configs/experiments/sft-q$n-smollm2.yaml $resume >> runs/curve/train-$n.log 2>&1
  done
}

evaluate() {
  name=$1; index=$2; shift 2
  mkdir -p runs/eval-curve
  pids=()
  for k in 0 1; do
    OMP_NUM_THREADS=1 nice -n 5 $A eval --questions runs/sc/questions/part$k.jsonl --corpus runs/idx/$index.sqlite \
      --seed 0 --max-new-tokens 128 --concurrency 8 --exclude runs/curve/q2838.jsonl "$@" \
      --out runs/eval-curve/$name-$index-part$k > runs/eval-curve/$name-$index-part$k.log 2>&1 &
    pids+=($!)
  done
  wait ${pids[0]} && wait ${pids[1]}
}

queue() {
  while pgrep -f "araft train sft" > /dev/null; do sleep 20; done  # one started by hand finishes first
  for n in "$@"; do
    train $n
    for index in old all; do
      [ -f runs/eval-curve/q$n-$index-part1/report.json ] && [ -f runs/eval-curve/q$n-$index-part0/report.json ] ||
        evaluate q$n $index --model araft-smollm2 --adapter runs/adapters/sft-q$n
    done
  done
}

case "$1" in
  train | eval | queue) benchmarks/learning_curve_inputs.sh ;;
  *) echo "usage: $0 train N... | eval NAME INDEX MODEL_ARGS... | queue N..." >&2; exit 2 ;;
esac
case "$1" in
  train) shift; train "$@" ;;
  eval) shift; evaluate "$@" ;;
  queue) shift; queue "$@" ;;
esac
