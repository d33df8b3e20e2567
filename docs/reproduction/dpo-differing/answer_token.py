"""log p(' Answer' | the student's own answer state, up to '[action:') under three adapters."""

import json
import math
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from araft_lc.chat.model_spec import ModelSpec
from araft_lc.react.chat_format import render_chat
from finetune.tokens import load_tokenizer

torch.set_num_threads(1)
ROLE = {"human": "user", "ai": "assistant", "system": "system"}
tok = load_tokenizer("smollm2-135m")
states = []
for line in open("runs/eval/sft-more-300/trajectories.jsonl"):
    r = json.loads(line)
    if r["status"] != "answered":
        continue
    call = r["calls"][-1]
    out = call["output"]
    i = out.find("[action:")
    if i < 0 or "Answer" not in out[i : i + 20]:
        continue
    turns = [{"role": ROLE.get(m["role"], m["role"]), "content": m["content"]} for m in call["messages"]]
    prompt = render_chat(tok, turns, add_generation_prompt=True) + out[: i + len("[action:")]
    states.append(prompt)
states = states[:60]
target = tok(" Answer", add_special_tokens=False)["input_ids"][0]
alt = tok(" Wikipedia", add_special_tokens=False)["input_ids"][0]
base = AutoModelForCausalLM.from_pretrained(ModelSpec.parse("smollm2-135m").local_id)
for name in sys.argv[1:]:
    m = PeftModel.from_pretrained(base, f"runs/adapters/{name}").eval()
    lp, top = [], 0
    with torch.no_grad():
        for p in states:
            ids = tok(p, add_special_tokens=False, return_tensors="pt")["input_ids"]
            logits = m(input_ids=ids).logits[0, -1].float()
            logp = torch.log_softmax(logits, -1)
            lp.append(float(logp[target]))
            top += int(logits.argmax()) == target
    print(
        f"{name}: {len(states)} answer states, mean log p(' Answer') {sum(lp) / len(lp):.3f}, "
        f"median p {sorted(math.exp(x) for x in lp)[len(lp) // 2]:.3f}, argmax ' Answer' {top}/{len(states)}"
    )
    base = m.unload()
