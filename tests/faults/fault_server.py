"""A fault-injecting OpenAI-compatible HTTP server for tests.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length) over raw asyncio
sockets to misbehave in ways a real framework would not let us: drop the
connection, stall forever, drip bytes, close halfway through a body. It runs in
a background thread on 127.0.0.1 and a free port, so sync and async tests can
both use it.

Example:
    with FaultServer() as srv:
        srv.push(Fault.http(429, retry_after=0.1), Fault.drop())   # next two chat calls misbehave
        client = ChatClient(Endpoint(srv.url, srv.model))
        ...
        assert srv.chat_calls == 3

A reply function decides what a healthy answer says; it gets the request body
and returns the text, or (text, top_logprobs) with one {token: logprob} dict per
token, e.g. to script a judge's True/False margin:

    FaultServer(reply=lambda body: ("True", [{"True": -0.1, "False": -2.4}]))
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Reply = Callable[[dict], "str | tuple[str, list[dict[str, float]]]"]


@dataclass(frozen=True)
class Fault:
    """How to answer one chat request. Build with the class methods."""

    kind: str = "ok"
    status: int = 200
    delay_s: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @classmethod
    def ok(cls) -> Fault:
        return cls("ok")

    @classmethod
    def http(cls, status: int, retry_after: float | str | None = None, body: bytes | None = None) -> Fault:
        headers = (("Retry-After", str(retry_after)),) if retry_after is not None else ()
        return cls("status", status=status, headers=headers, body=body)

    @classmethod
    def timeout(cls, hang_s: float = 3600.0) -> Fault:
        """Read the request, then say nothing for `hang_s` seconds."""
        return cls("timeout", delay_s=hang_s)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without a response."""
        return cls("drop")

    @classmethod
    def reset(cls) -> Fault:
        """Abort the connection with a TCP RST."""
        return cls("reset")

    @classmethod
    def garbage(cls, body: bytes = b"<html><body>502 Bad Gateway</body></html>") -> Fault:
        """HTTP 200 with a body that is not JSON."""
        return cls("garbage", body=body)

    @classmethod
    def half_json(cls) -> Fault:
        """HTTP 200 with a well-framed body holding the first half of a valid JSON answer."""
        return cls("half_json")

    @classmethod
    def truncated(cls) -> Fault:
        """Headers promise the whole body; the connection closes halfway through it."""
        return cls("truncated")

    @classmethod
    def wrong_shape(cls) -> Fault:
        """Valid JSON without choices[0].message (e.g. a proxy's own error object)."""
        return cls("wrong_shape", body=b'{"choices": [], "object": "chat.completion"}')

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """A correct answer after `delay_s` seconds."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def drip(cls, interval_s: float = 0.2) -> Fault:
        """A correct answer sent one byte every `interval_s` seconds (a very slow stream)."""
        return cls("drip", delay_s=interval_s)


def _count_fault(server: "FaultServer", fault: Fault) -> None:
    """Count an injected fault; with CHATCURATE_FAULT_LOG set, also append its kind there
    (one line each) so a test run can report how many faults its tests survived."""
    with server._lock:
        server.faults_injected += 1
    path = os.environ.get("CHATCURATE_FAULT_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{fault.kind}{' ' + str(fault.status) if fault.kind == 'status' else ''}\n")


def echo_reply(body: dict) -> str:
    """The default healthy answer: JSON when structured output was asked for, else an echo."""
    last = next((m.get("content") for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
    if body.get("response_format") or body.get("guided_json") or body.get("structured_outputs"):
        return json.dumps({"echo": last})
    return f"echo: {last}"


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    at: float = field(default_factory=time.monotonic)


class FaultServer:
    """OpenAI-compatible fake: /v1/chat/completions, /v1/models, /health, with scripted faults."""

    def __init__(
        self,
        *,
        model: str = "fake-model",
        reply: Reply | None = None,
        policy: Callable[[int, dict], Fault] | None = None,
        port: int = 0,
    ):
        self.model = model
        self.reply = reply or echo_reply
        self.policy = policy
        self._port = port
        self._script: deque[Fault] = deque()
        self._lock = threading.Lock()
        self.requests: list[SeenRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.faults_injected = 0  # answers other than a healthy one
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- control ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def url(self) -> str:
        """The OpenAI base URL, ending in /v1."""
        return f"{self.base_url}/v1"

    def push(self, *faults: Fault) -> None:
        """Queue faults for the next chat requests, in arrival order; then answers are healthy."""
        with self._lock:
            self._script.extend(faults)

    @property
    def chat_calls(self) -> int:
        with self._lock:
            return sum(1 for r in self.requests if r.path.endswith("/chat/completions"))

    def chat_bodies(self) -> list[dict]:
        with self._lock:
            return [r.body for r in self.requests if r.path.endswith("/chat/completions") and r.body is not None]

    def start(self) -> FaultServer:
        self._thread = threading.Thread(target=self._run, name="FaultServer", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FaultServer did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._loop = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- server ----------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._on_connection, "127.0.0.1", self._port)
            self._port = self._server.sockets[0].getsockname()[1]

        loop.run_until_complete(serve())
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                raw = await reader.readexactly(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = None
                keep = await self._handle(method, path, headers, body, writer)
                if not keep or headers.get("connection", "").lower() == "close":
                    return
        except asyncio.CancelledError:
            pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            if not writer.is_closing():
                writer.close()

    async def _handle(
        self, method: str, path: str, headers: dict[str, str], body: dict | None, writer: asyncio.StreamWriter
    ) -> bool:
        with self._lock:
            self.requests.append(SeenRequest(method, path, headers, body))
            index = len(self.requests) - 1
        route = path.split("?", 1)[0]
        if method == "GET" and route in ("/health", "/v1/health"):
            await self._send(writer, 200, b"{}")
            return True
        if method == "GET" and route == "/v1/models":
            payload = {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "fault_server"}]}
            await self._send(writer, 200, json.dumps(payload).encode())
            return True
        if not (method == "POST" and route == "/v1/chat/completions"):
            await self._send(writer, 404, b'{"error": {"message": "not found"}}')
            return True
        if body is None:
            await self._send(writer, 400, b'{"error": {"message": "body is not JSON"}}')
            return True

        with self._lock:
            fault = self._script.popleft() if self._script else None
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if fault is None:
                fault = self.policy(index, body) if self.policy else Fault.ok()
            if fault.kind != "ok":
                _count_fault(self, fault)
            return await self._answer(fault, body, writer)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, fault: Fault, body: dict, writer: asyncio.StreamWriter) -> bool:
        kind = fault.kind
        if kind == "status":
            payload = fault.body or json.dumps(
                {"error": {"message": f"injected HTTP {fault.status}", "type": "fault", "code": fault.status}}
            ).encode()
            await self._send(writer, fault.status, payload, fault.headers)
            return True
        if kind == "timeout":
            await asyncio.sleep(fault.delay_s)
            return False
        if kind == "drop":
            return False
        if kind == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if kind in ("garbage", "wrong_shape"):
            await self._send(writer, 200, fault.body or b"")
            return True

        full = json.dumps(self._completion(body)).encode()
        if kind == "half_json":
            await self._send(writer, 200, full[: len(full) // 2])
            return True
        if kind == "truncated":
            writer.write(self._head(200, len(full)) + full[: len(full) // 2])
            await writer.drain()
            return False
        if kind == "slow":
            await asyncio.sleep(fault.delay_s)
        if kind == "drip":
            writer.write(self._head(200, len(full)))
            for i in range(len(full)):
                writer.write(full[i : i + 1])
                await writer.drain()
                await asyncio.sleep(fault.delay_s)
            return True
        await self._send(writer, 200, full)
        return True

    def _completion(self, body: dict) -> dict:
        out = self.reply(body)
        text, top = (out if isinstance(out, tuple) else (out, None))
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        k = body.get("top_logprobs") if body.get("logprobs") else None
        if k is not None:
            if top is None:
                # One fake token per word, the chosen one most likely.
                top = [{w: -0.05, f"{w}_alt": -3.0} for w in text.split()] or [{text: -0.05}]
            content = []
            for alts in top:
                ranked = sorted(alts.items(), key=lambda kv: kv[1], reverse=True)[: max(int(k), 1)]
                tok, lp = ranked[0]
                content.append(
                    {
                        "token": tok,
                        "logprob": lp,
                        "bytes": list(tok.encode()),
                        "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in ranked],
                    }
                )
            choice["logprobs"] = {"content": content}
        return {
            "id": "chatcmpl-fault",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [choice],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    @staticmethod
    def _head(status: int, length: int, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json", f"Content-Length: {length}"]
        lines += [f"{k}: {v}" for k, v in headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(self, writer: asyncio.StreamWriter, status: int, payload: bytes,
                    headers: tuple[tuple[str, str], ...] = ()) -> None:
        writer.write(self._head(status, len(payload), headers) + payload)
        await writer.drain()
