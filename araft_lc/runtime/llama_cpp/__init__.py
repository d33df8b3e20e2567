"""The llama.cpp engine: what we know of the native library and its parameters per CPU
(``lib``), the child-process check that it runs these weights here (``check``), the
``LlamaCppEngine`` (``engine``) over one running batch of sequences (``batch``), the GGUF's own
tokenizer and chat template (``gguf_tokenizer``), and LoRA adapters converted to GGUF
(``gguf_lora``). None of it imports torch."""
