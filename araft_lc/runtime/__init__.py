"""Running a local causal LM, with text and tokens in and out, never messages. Two engines,
each in its package: ``torch`` (transformers) and ``llama_cpp``. What both share is here: one
call's settings and output, the token draw and stop strings (``decoding``), the call waiting to
be decoded (``request``), the loop a batch's worker thread runs (``batch_loop``), the engine
base and its token streamer (``text_engine``), and the prefix KV cache's bookkeeping
(``prefix_cache``)."""
