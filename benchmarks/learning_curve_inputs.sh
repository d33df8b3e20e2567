#!/bin/bash
# Issue 39's inputs, made again from nothing but the shared data and git, each step skipped when
# its output exists (a few minutes on 2 cores): the FTS5 indexes of both corpora, the 300
# evaluation questions in two halves, the 600 old training questions' teacher records
# (runs/q600/sft.jsonl), the 2,238 new questions' (runs/q2838/sft-new.jsonl), the curve's nested
# sets (runs/curve/q*.jsonl), and the 600-question araft-smollm2 out of git. runs/ is not kept
# between machines; learning_curve_runs.sh and expert_iteration_runs.sh read what this writes.
#   benchmarks/learning_curve_inputs.sh
# The counts each step printed on 2026-12-08 are in docs/reproduction.md (issue 39).
set -e
cd "$(dirname "$0")/.."
A=.venv/bin/araft
PY=.venv/bin/python
D=${ARAFT_DATA_DIR:-../shared/data/hotpotqa}
mkdir -p runs/idx runs/q400 runs/q600 runs/q2838 runs/curve runs/adapters

[ -f runs/idx/old.sqlite ] || $A corpus build $D/wiki_corpus.jsonl.gz --out runs/idx/old.sqlite
[ -f runs/idx/all.sqlite ] || $A corpus build $D/wiki_corpus_all.jsonl.gz --out runs/idx/all.sqlite

# The 300 evaluation questions: a500's seed-0 sample of 300, its first and last 150.
[ -f runs/sc/questions/part1.jsonl ] ||
  $PY -m benchmarks.self_consistency split --questions $D/dev_distractor_a500.jsonl --seed 0 \
    --limit 300 --parts 2 --out runs/sc/questions
# The other 200 of a500 are training questions.
[ -f runs/q600/a500-rest-200.jsonl ] || {
  $PY -c 'import json, sys
held = {json.loads(l)["id"] for k in (0, 1) for l in open(f"runs/sc/questions/part{k}.jsonl")}
with open(sys.argv[2], "w") as out:
    out.writelines(l for l in open(sys.argv[1]) if json.loads(l)["id"] not in held)' \
    $D/dev_distractor_a500.jsonl runs/q600/a500-rest-200.part.jsonl &&
  mv runs/q600/a500-rest-200.part.jsonl runs/q600/a500-rest-200.jsonl; }

# Both teachers, both orders of the comparison questions, on an index of the corpus the questions'
# pages are in: the 600 old questions on the old corpus (the 400 first, then a500's 200, in the order
# of the records behind araft-smollm2), the 2,238 new ones on the big one.
teachers() {  # NAME INDEX QUESTIONS...
  name=$1; index=$2; shift 2
  for t in oracle visible; do
    for o in "" "--order reversed"; do
      out=runs/$name/traj-$t${o:+-reversed}.jsonl
      [ -f $out.done ] && continue
      # shellcheck disable=SC2086  # $o is two words or none
      $A generate --questions "$@" --teacher $t $o --corpus runs/idx/$index.sqlite --out $out --concurrency 4
      touch $out.done
    done
  done
}
teachers q400 old $D/dev_distractor_b300.jsonl $D/train_levels_100.json
teachers q600 old runs/q600/a500-rest-200.jsonl
teachers q2838 all $D/train_distractor_t1493.jsonl $D/dev_distractor_d745.jsonl
records() {  # OUT NAME...
  out=$1; shift
  [ -f $out ] && return
  files=(); for n in "$@"; do files+=(runs/$n/traj-{oracle,oracle-reversed,visible,visible-reversed}.jsonl); done
  # written aside and moved into place, so that a stopped run leaves no half file to skip next time
  $A convert sft "${files[@]}" --out ${out%.jsonl}.part.jsonl --prompt-style zeroshot_turns \
    --granularity trajectory --tokenizer smollm2-135m
  mv ${out%.jsonl}.part.jsonl $out
}
records runs/q600/sft.jsonl q400 q600
records runs/q2838/sft-new.jsonl q2838
[ -f runs/curve/q2838.jsonl ] ||
  $PY -m benchmarks.learning_curve --base runs/q600/sft.jsonl --more runs/q2838/sft-new.jsonl \
    --questions 1200 2400 2838 --seed 0 --out runs/curve

# The 600-question araft-smollm2 of 2026-11-29, the curve's first point and expert iteration's start.
q600=runs/adapters/araft-smollm2-q600
[ -f $q600/adapter_model.safetensors ] ||
  { mkdir -p $q600 && git archive 1e1c7af araft_lc/adapters/araft-smollm2 | tar -x --strip-components=3 -C $q600; }
