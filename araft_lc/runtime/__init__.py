"""Running a local causal LM: loading weights and LoRA adapters (``causal_lm``), and the decode
paths behind the chat model: padded batches (``batcher``), one running batch that calls join and
leave (``continuous_batch``, over ``kv_rows``), the prefix KV cache (``prefix_cache``), static-cache
decode (``static_decode``) and LoRA merging (``lora_merge``). It knows tokens, not prompts."""
