"""What LangSmith receives of a run: ``LangChainTracer`` pointed at a LangSmith-shaped HTTP endpoint
on 127.0.0.1 (the edge of the world: the real client, its real batching and wire format), and the
run tree read back from what it was sent: graph -> reason -> model, graph -> act -> tool, the
model named as the user named it and the agent's prompt version in the metadata."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from helpers import act, answer

from araft_lc.agent.graph import create_araft_agent

langsmith = pytest.importorskip("langsmith")

# The client's batch settings, given whole (a partial config stops its tracing thread); plain
# JSON to /runs/batch, so the endpoint reads it without a multipart parser.
_INFO = {
    "version": "test",
    "batch_ingest_config": {
        "use_multipart_endpoint": False,
        "size_limit": 100,
        "size_limit_bytes": 20_971_520,
        "scale_up_qsize_trigger": 1000,
        "scale_up_nthreads_limit": 16,
        "scale_down_nempty_trigger": 4,
    },
}


@pytest.fixture
def langsmith_endpoint():
    """A LangSmith-shaped endpoint that keeps every run it is sent (posts and patches merged)."""
    runs: dict[str, dict] = {}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, body=None):
            data = json.dumps(body or {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._reply(_INFO if self.path.startswith("/info") else {})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            sent = body.get("post", []) + body.get("patch", []) if self.path.startswith("/runs/batch") else [body]
            with lock:
                for run in sent:
                    runs.setdefault(str(run["id"]), {}).update({k: v for k, v in run.items() if v is not None})
            self._reply()

        do_PATCH = do_POST

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", runs
    finally:
        server.shutdown()


def _tracer(url):
    from langchain_core.tracers.langchain import LangChainTracer

    client = langsmith.Client(api_url=url, api_key="test-key", info=_INFO)
    return LangChainTracer(client=client, project_name="araft-test")


def _path_up(runs, run):
    """The names from ``run`` up to its root."""
    names = [run["name"]]
    while run.get("parent_run_id"):
        run = runs[str(run["parent_run_id"])]
        names.append(run["name"])
    return names


def test_the_run_tree_reaches_langsmith_with_the_names_the_user_gave(langsmith_endpoint, tiny_llama, wiki, scripted):
    from araft_lc.chat.model_spec import ModelSpec

    url, runs = langsmith_endpoint
    tracer = _tracer(url)
    model = ModelSpec.parse(str(tiny_llama)).load(max_new_tokens=8)  # a folder, as --model takes it
    create_araft_agent(model, [wiki], max_steps=1).invoke(
        {"question": "Who founded Philadelphia?"}, {"callbacks": [tracer]}
    )
    tool_run = create_araft_agent(scripted(script=[act("Wikipedia", "Philadelphia"), answer("William Penn")]), [wiki])
    tool_run.invoke({"question": "Who founded Philadelphia?"}, {"callbacks": [tracer]})
    tracer.wait_for_futures()

    roots = [r for r in runs.values() if not r.get("parent_run_id")]
    assert [r["name"] for r in roots] == ["araft", "araft"] and all(r.get("end_time") for r in runs.values())
    [llm] = [r for r in runs.values() if r["run_type"] == "llm" and r["name"] == "AraftChatModel"]
    assert _path_up(runs, llm)[-2:] == ["reason", "araft"]
    metadata = llm["extra"]["metadata"]
    assert metadata["ls_model_name"] == tiny_llama.name  # the folder the user named, not a cache path
    assert metadata["ls_provider"] == "araft" and metadata["araft_prompt_version"] == "araft-fewshot-v1"
    [tool] = [r for r in runs.values() if r["run_type"] == "tool"]
    assert tool["name"] == "Wikipedia" and _path_up(runs, tool)[-2:] == ["act", "araft"]
    assert "Philadelphia is the largest city" in json.dumps(tool["outputs"])


def test_a_preset_is_traced_by_its_name(tiny_llama):
    from araft_lc.chat.chat_model import AraftChatModel

    named = AraftChatModel(model_id=str(tiny_llama), model_name="araft-smollm2")
    assert named._get_ls_params()["ls_model_name"] == "araft-smollm2"
    assert AraftChatModel(model_id=str(tiny_llama))._get_ls_params()["ls_model_name"] == tiny_llama.name
