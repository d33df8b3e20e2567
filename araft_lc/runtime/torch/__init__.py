"""The torch engine (transformers): loading weights and LoRA adapters (``causal_lm``), the
``DecodeEngine`` (``engine``) over a padded batcher (``padded_batch``) or one running batch that
calls join and leave (``continuous_batch``, its key/values in ``batch_kv``), static-cache decode
for a compiled GPU forward (``static_decode``), LoRA merging (``lora_merge``), and a GGUF read
into a transformers folder (``gguf_convert``)."""
