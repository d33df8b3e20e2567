#!/bin/bash
# The GPU benchmark on a GPU machine, in one call (about 9 minutes on an H200; stages time out
# on their own and what they measured is kept). From the project root:
#   here:            bash ../shared/gpu/prepare.sh    # .gpu/: wheels the GPU image lacks, SmolLM2's tokenizer, the data
#   on the machine:  bash benchmarks/gpu_run.sh       # with .gpu/ carried beside the tree
# Writes $OUT/gpu_bench.json, $OUT/RESULTS.md (the run's section in place) and $OUT/log.txt;
# copy the first two into benchmarks/ here.
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-/tmp/gpu-bench-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$(pwd) ARAFT_DATA_DIR=$(pwd)/.gpu/hotpotqa ARAFT_CACHE_DIR=/tmp/araft-cache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/log.txt"
python3 -m benchmarks --gpu --save --tokenizer .gpu/tok 2>&1 | grep -v "it/s\]" | tee -a "$OUT/log.txt"
cp benchmarks/gpu_bench.json benchmarks/RESULTS.md "$OUT"/ 2>/dev/null
