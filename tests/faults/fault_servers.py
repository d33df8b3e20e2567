"""Misbehaving servers on 127.0.0.1, for the fault suite: a MediaWiki API and an OpenAI-compatible
chat endpoint that answer normally or with a chosen fault.

Both are real HTTP servers on a real socket (the edge of the world is the network), serving the
response shapes the real APIs send (MediaWiki ``formatversion=2``; OpenAI chat completions).
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

PAGE = {
    "title": "Philadelphia",
    "extract": "Philadelphia is the largest city in Pennsylvania. It was founded by William Penn in 1682.",
    "pageprops": {},
}

# The faults a server can play, and what each sends.
WIKI_FAULTS = (
    "slow",  # answers after 30 s (the client's call limit is far lower)
    "trickle",  # 200, then one byte of body every 0.2 s, forever
    "429",  # Too Many Requests, Retry-After: 1
    "429-date",  # Retry-After as an HTTP date one second ahead
    "429-hour",  # Retry-After: 3600, longer than any call may wait
    "500",
    "503",
    "malformed",  # 200 with broken JSON
    "wrong-shape",  # 200 with JSON that is not the API's shape
    "not-object",  # 200 with a JSON list
    "empty",  # 200 with an empty body
    "binary",  # 200 with bytes that are not UTF-8
    "huge",  # 200 with 5 MB of JSON
    "truncated",  # Content-Length 2000, 20 bytes sent, then closed
    "reset",  # the connection is reset (RST) without an answer
    "close",  # the connection is closed without an answer
    "redirect-loop",  # 302 to itself
)


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Close the client's connection with a TCP RST (SO_LINGER 0), as a crashed server does."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.connection.close()
    handler.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def play(self, fault: str, ok: Callable[[], bytes]) -> None:
        """Answer with ``fault`` ("" answers normally with ``ok()``)."""
        if fault == "":
            self.send(200, ok())
        elif fault == "slow":
            time.sleep(30)
            self.send(200, ok())
        elif fault == "trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif fault == "429":
            self.send(429, b'{"error": "ratelimited"}', {"Retry-After": "1"})
        elif fault == "429-date":
            from email.utils import formatdate

            self.send(429, b'{"error": "ratelimited"}', {"Retry-After": formatdate(time.time() + 1, usegmt=True)})
        elif fault == "429-hour":
            self.send(429, b'{"error": "ratelimited"}', {"Retry-After": "3600"})
        elif fault in ("500", "503"):
            self.send(int(fault), b"<html>server error</html>")
        elif fault == "malformed":
            self.send(200, b'{"query": {"pages": [{"title": "Phil')
        elif fault == "wrong-shape":
            self.send(200, b'{"query": {"pages": "none", "search": 7}}')
        elif fault == "not-object":
            self.send(200, b'["query", "pages"]')
        elif fault == "empty":
            self.send(200, b"")
        elif fault == "binary":
            self.send(200, b"\xff\xfe\x00garbage\x80\x81")
        elif fault == "huge":
            self.send(200, b'{"pad": "' + b"x" * (5 << 20) + b'"}')
        elif fault == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", "2000")
            self.end_headers()
            self.wfile.write(b'{"query": {"pages": [')
            self.wfile.flush()
            self.close_connection = True
        elif fault == "reset":
            _reset(self)
        elif fault == "close":
            self.close_connection = True
        elif fault == "redirect-loop":
            self.send(302, b"", {"Location": self.path})
        else:
            raise ValueError(f"unknown fault {fault!r}")


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[_Handler]):
        super().__init__(("127.0.0.1", 0), handler)
        self.fault = ""  # the fault every request gets
        self.fail_first = 0  # or: only the first N requests get it, then normal answers
        self.requests = 0
        self.lock = threading.Lock()

    def next_fault(self) -> str:
        with self.lock:
            self.requests += 1
            if self.fail_first and self.requests > self.fail_first:
                return ""
            return self.fault

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up mid-answer is what these servers are for

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _WikiHandler(_Handler):
    def do_GET(self) -> None:
        params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}

        def ok() -> bytes:
            if params.get("list") == "search":
                return json.dumps({"query": {"search": [{"title": PAGE["title"]}]}}).encode()
            if params.get("titles", "").casefold() == PAGE["title"].casefold():
                return json.dumps({"query": {"pages": [PAGE]}}).encode()
            return json.dumps({"query": {"pages": [{"title": params.get("titles", ""), "missing": True}]}}).encode()

        self.play(self.server.next_fault(), ok)


def chat_completion(text: str, finish_reason: str = "stop") -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "teacher",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
    ).encode()


# Teacher faults, chosen per question by a marker in its text ([fault] or [fault-once]).
TEACHER_FAULTS = ("hang", "500", "503", "truncated", "reset", "malformed", "empty", "no-stop", "echo-key")


class _TeacherHandler(_Handler):
    """An OpenAI-compatible server whose teacher answers every question "Philadelphia" at once;
    a question carrying ``[fault]`` gets that fault on every call, ``[fault-once]`` on its first."""

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self.send(200, json.dumps({"object": "list", "data": [{"id": "teacher", "object": "model"}]}).encode())
        else:
            self.send(404, b"{}")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.seen_keys.add(self.headers.get("Authorization", ""))
        prompt = "\n".join(str(m.get("content", "")) for m in body.get("messages", []))
        question = prompt.rsplit("Question:", 1)[-1].strip().split("\n")[0].strip()
        with self.server.lock:
            first = self.server.seen[question] == 0
            self.server.seen[question] += 1
        fault = next(
            (name for name in TEACHER_FAULTS if f"[{name}]" in question or (first and f"[{name}-once]" in question)), ""
        )
        answer = "Thought: I know it.\nAction: [action: Answer, action_input: Philadelphia]"
        if fault == "no-stop":
            # A server that ignores `stop` and runs on: the client must cut at "Observation:".
            text = (
                "Thought: I look it up.\nAction: [action: Wikipedia, action_input: Philadelphia]\n"
                "Observation: (invented by the model) Nothing.\nThought: done\n"
                "Action: [action: Answer, action_input: Nowhere]" + " la" * 200
            )
            self.send(200, chat_completion(text, finish_reason="length"))
        elif fault == "echo-key":
            # A server that echoes the credential in its error, which ends up in the record's error.
            auth = self.headers.get("Authorization", "")
            self.send(401, json.dumps({"error": {"message": f"Incorrect API key provided: {auth}"}}).encode())
        elif fault in ("hang",):
            self.play("slow", lambda: chat_completion(answer))
        else:
            self.play(fault, lambda: chat_completion(answer))


class TeacherServer(FaultServer):
    def __init__(self) -> None:
        super().__init__(_TeacherHandler)
        self.seen: Counter[str] = Counter()
        self.seen_keys: set[str] = set()


@contextlib.contextmanager
def serve(server: FaultServer) -> Iterator[FaultServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def wiki_server() -> FaultServer:
    return FaultServer(_WikiHandler)
