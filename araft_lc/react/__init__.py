"""The ReAct grammar and its records: the action parser (``parser``), the prompt styles and their
YAML files (``prompt``, ``prompts/``), a step and a run's trajectory record (``step``,
``trajectory``), a tool's input from an action (``tool_input``), and the chat renderings
(``chat_format``, ``llama2_format``). Plain data and text: no model, no graph."""
