"""The agent: the LangGraph state machine (``graph``), the bounded tool runner (``tool_runner``),
the run settings (``settings``) and the one factory that builds the agent from them
(``factory``), the LangGraph server's entry (``server``), and the callbacks that record a run
(``recorder``) or trace it to JSONL (``tracing``)."""
