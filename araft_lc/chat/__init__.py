"""The chat models the agent runs on: ``AraftChatModel`` (``chat_model``: the LangChain surface
over a local model's ``DecodeEngine``), what one call may set (``call_options``), its tool calling
and structured output, the model spec string and ``load_chat_model`` (``model_spec``), and the
named presets and the defaults every door shares (``presets``)."""
