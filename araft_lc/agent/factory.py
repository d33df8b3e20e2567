"""The agent ``araft ask`` runs, built from run settings: the one place that builds it.

``araft ask``, ``araft generate``, ``araft eval`` and the LangGraph server (``araft_lc.agent.server``) all
build their agent here, from a ``RunSettings`` (model, adapter, prompt, corpus, steps, tokens, time
limit, guard), so no door can pair an adapter with another prompt or drop a limit. An app that
wants the same agent calls it too::

    from araft_lc import RunSettings, build_agent

    agent = build_agent(RunSettings(corpus="../shared/data/hotpotqa/wiki_corpus.jsonl.gz"))
    question = "Fodder on My Wings is an album by a singer/pianist/songwriter born in which year ?"
    agent.invoke({"question": question})["answer"]

The prompt is the model's own unless the settings name one (``araft_lc.agent.graph.agent_prompt``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Sequence

from araft_lc.agent.graph import AraftAgent, create_araft_agent
from araft_lc.agent.settings import RunSettings
from araft_lc.agent.vote import vote_rule

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.tools import BaseTool

    from araft_lc.wiki.wikipedia import WikipediaTool

__all__ = ["build_agent", "check_settings", "settings_model", "settings_tool", "settings_tools", "wikipedia_of"]


def check_settings(settings: RunSettings) -> None:
    """What can be checked before anything heavy loads (milliseconds), beyond the values (checked
    when the settings were made): the prompt style, the model spec, its folders and, for an
    ``openai:`` model, that the server answers.

    Raises:
        ValueError: one line naming the problem and the fix (``ConfigError``, ``ModelLoadError``).
    """
    from araft_lc.react.prompt import load_prompt

    if settings.prompt:
        load_prompt(settings.prompt)
    settings.spec.check(settings.adapter)
    settings.spec.check_server()


def settings_tool(settings: RunSettings) -> WikipediaTool:
    """The Wikipedia tool the settings name: the local index of ``corpus`` (indexed once into the
    cache when it is a source file), else live Wikipedia, checked to answer.

    Raises:
        FileNotFoundError: the corpus does not exist.
        WikipediaUnavailable: live Wikipedia does not answer (the message says how to build an index).
    """
    from araft_lc.wiki.select import wikipedia_tool

    return wikipedia_tool(
        settings.corpus, live_api=settings.live_api, check_live=True, max_chars=settings.observation_chars
    )


def settings_tools(settings: RunSettings) -> list[BaseTool]:
    """The tools the settings name, in the order the prompt lists them: the Wikipedia tool
    (``settings_tool``) unless ``wikipedia`` is off, each ``tools`` reference, then the tools of
    the servers in ``mcp_config`` (``araft_lc.agent.tool_refs``).

    Raises:
        ValueError: a reference or config that names no tools, a name clash (with the answer
            action, or between tools), or a corpus or live Wikipedia that is not there.
    """
    from araft_lc.agent.tool_refs import load_mcp_tools, load_tool_ref
    from araft_lc.react.tool_input import check_tool_names

    named = [tool for ref in settings.tools for tool in load_tool_ref(ref)]  # before an index is built
    if settings.mcp_config:
        named.extend(load_mcp_tools(settings.mcp_config))
    tools = [settings_tool(settings), *named] if settings.wikipedia else named
    check_tool_names([t.name for t in tools])  # now, before a model loads (the agent checks it too)
    return tools


def wikipedia_of(tools: Sequence[BaseTool]) -> Optional[WikipediaTool]:
    """The Wikipedia tool among ``tools`` (what a teacher searches, and a record's tool backend), or None."""
    from araft_lc.wiki.wikipedia import WikipediaTool

    return next((t for t in tools if isinstance(t, WikipediaTool)), None)


def settings_model(settings: RunSettings) -> BaseChatModel:
    """The chat model the settings name, loaded (a preset, a folder, a Hub id, an ``openai:`` server).

    Raises:
        ValueError: the spec names nothing loadable here (a teacher: see ``evals.teachers``).
    """
    return settings.spec.load(**settings.model_options())


def build_agent(
    settings: Optional[RunSettings] = None,
    *,
    model: Optional[BaseChatModel] = None,
    tools: Optional[Sequence[BaseTool]] = None,
    checkpointer: Any = None,
    name: str = "araft",
) -> AraftAgent:
    """The Araft agent the settings describe: ``araft ask``'s with the same settings.

    Args:
        settings: the run settings; None: ``araft ask``'s defaults (``RunSettings()``: the shipped
            model, ``$ARAFT_CORPUS`` or live Wikipedia, 5 steps, 600 s).
        model: a chat model built already (a teacher, a seeded copy, a model shared by several
            agents); None loads the one the settings name, after the cheap checks.
        tools: the agent's tools; None: the tools the settings name (``settings_tools``).
        checkpointer: passed to ``compile`` (threads; the server brings its own).
        name: the graph's name in traces.

    Raises:
        ValueError: settings that cannot run, named in one line, before anything heavy loads.
    """
    settings = settings if settings is not None else RunSettings()
    if model is None:
        check_settings(settings)  # before the corpus is indexed or a model loads
    tools = list(tools) if tools is not None else settings_tools(settings)
    model = model if model is not None else settings_model(settings)
    return create_araft_agent(
        model,
        tools,
        prompt=settings.prompt,
        max_steps=settings.max_steps,
        repetition_guard=settings.repetition_guard,
        max_seconds=settings.max_seconds,
        tool_timeout=settings.tool_timeout,
        observation_chars=settings.observation_chars,
        max_question_chars=settings.max_question_chars,
        samples=settings.samples,
        sample_temperature=settings.sample_temperature,
        sample_seed=settings.seed,
        vote=vote_rule(settings.vote),  # checked already (settings.check): never raises here
        checkpointer=checkpointer,
        name=name,
    )
