"""Durable files: whole-or-absent writes (``atomic_file``), the one JSONL reader (``jsonl``) and
appender (``jsonl_sink``), one writer per output (``output_lock``), the one-line error of a failed
write (``write_error``) and of any exception (``error_text``), key redaction (``redact``), the
cache folder (``cache_dir``) and checked YAML configs (``config_file``). The lowest floor: it
imports nothing else of araft_lc."""
