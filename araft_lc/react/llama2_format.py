"""The Llama-2 chat format, for tokenizers that carry no chat template.

``<s>[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST]`` and, for later turns,
`` {assistant} </s><s>[INST] {user} [/INST]``. The text carries its own ``<s>``: tokenize it with
``add_special_tokens=False`` so the BOS is not doubled (a flaw of the original pipeline).
"""

from __future__ import annotations

from typing import Mapping, Sequence

__all__ = ["llama2_prompt"]

B_INST, E_INST = "[INST]", "[/INST]"
B_SYS, E_SYS = "<<SYS>>\n", "\n<</SYS>>\n\n"


def llama2_prompt(messages: Sequence[Mapping[str, str]], bos: str = "<s>", eos: str = "</s>") -> str:
    """Render ``[{"role": "system"|"user"|"assistant", "content": str}, ...]`` for generation.

    Raises:
        ValueError: roles out of order (after the optional system message, user and assistant
            must alternate, starting and ending with user).
    """
    messages = list(messages)
    system = ""
    if messages and messages[0]["role"] == "system":
        system = messages[0]["content"]
        messages = messages[1:]
    roles = [m["role"] for m in messages]
    if (
        not roles
        or roles[-1] != "user"
        or any(r != ("user" if i % 2 == 0 else "assistant") for i, r in enumerate(roles))
    ):
        raise ValueError(f"Llama-2 chat needs alternating user/assistant turns ending with user, got {roles}")
    out = []
    for i in range(0, len(messages), 2):
        user = messages[i]["content"]
        if i == 0 and system:
            user = f"{B_SYS}{system}{E_SYS}{user}"
        out.append(f"{bos}{B_INST} {user.strip()} {E_INST}")
        if i + 1 < len(messages):
            out.append(f" {messages[i + 1]['content'].strip()} {eos}")
    return "".join(out)
