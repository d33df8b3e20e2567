#!/usr/bin/env bash
# llama.cpp builds and settings side by side (issue 37): llama-cpp-python's own Llama (the bar) and
# our engine on the shipped model (adapter merged), each in its own process, one after another,
# for every build given and with llama.cpp's extra buffer types on and off.
#
#   benchmarks/llama_cpp_builds.sh ROUNDS NAME=SITE [NAME=SITE ...]
#
# NAME=SITE: a label and a folder holding an unpacked llama-cpp-python wheel (`unzip WHEEL -d SITE`),
# put first on PYTHONPATH; SITE empty (`default=`) is the venv's own. Wheels are built with, e.g.:
#   CMAKE_ARGS="-DGGML_OPENMP=OFF" pip wheel --no-deps --no-cache-dir llama-cpp-python==0.3.36 -w DIR
# Prints one JSON line per run, prefixed with the build, engine and setting.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1; shift
builds=("$@")
adapter=araft_lc/adapters/araft-smollm2
for round in $(seq "$rounds"); do
  for build in "${builds[@]}"; do
    name=${build%%=*}; site=${build#*=}
    for run in "llama_cpp on" "ours_llama_cpp_merged on" "ours_llama_cpp_merged off"; do
      engine=${run% *}; extra=${run#* }
      out=$(PYTHONPATH=$site .venv/bin/python -m benchmarks.llama_cpp_bench --adapter $adapter --engine "$engine" \
            --extra-buffers "$extra" --repeats 3 2>/dev/null | tail -1)
      echo "round=$round build=$name engine=$engine extra_buffers=$extra $out"
    done
  done
done
