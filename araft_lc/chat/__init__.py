"""The chat models the agent runs on: ``AraftChatModel`` (the LangChain surface over a local
model), its tool calling and structured output, the model spec string (``model_spec``), the
named presets and the defaults every door shares (``presets``), and ``load_chat_model``."""
