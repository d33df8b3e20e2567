"""Running a local causal LM: loading weights and LoRA adapters (``causal_lm``) and the
``DecodeEngine`` behind the chat model (``engine``): one call's settings and output
(``decoding``), padded batches (``batcher``), one running batch that calls join and leave
(``continuous_batch``, over ``batch_kv``), the prefix KV cache (``prefix_cache``), static-cache
decode (``static_decode``) and LoRA merging (``lora_merge``). It knows text and tokens, not
messages."""
