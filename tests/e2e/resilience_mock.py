#!/usr/bin/env python3
"""A small misbehaving upstream for test_resilience.py and bench/resilience.py (stdlib only).

    python tests/e2e/resilience_mock.py --port 0 [--seed N]   # prints "READY <port>"

It covers what tests/e2e/mock_upstream.py (the strict mock) cannot do: state across requests,
randomness, an error *inside* a 200 stream, silences that end well, and noticing that the
gateway closed the connection. It speaks just enough of two APIs, on 127.0.0.1:
  OpenAI Chat   POST /v1/chat/completions  (key: Authorization: Bearer sk-upstream-…)
  Anthropic     POST /v1/messages          (key: x-api-key sk-ant-upstream-…, anthropic-version)
Another key is answered with the API's 401. Behaviour by the request's model name:
  flaky-<pct>           500 (the API's error body) for <pct> % of requests, at random (e.g. flaky-33.3)
  failfirst-<n>[-tag]   503 for the first <n> requests with that exact model name, then normal
  slowfirst-<ms>[-tag]  the first request with that exact model name answers normally after <ms>;
                        every later one gets 503 at once
  overloaded-first      200 event stream whose first event is an error (Anthropic
                        overloaded_error; Chat `data: {"error":…}`); non-stream: 529 / 503
  silent-<ms>           stream: first events, <ms> of silence, then the rest (non-stream: the
                        silence comes before the headers)
  hang                  stream: first events, then silence for up to 30 s while watching the
                        socket: the record gets "peerClosed": true and "peerClosedAfterMs" when the
                        gateway drops the connection (non-stream: silence before the headers)
  anything else         a normal answer: "rmock(<model>) reply" (streamed when asked)
Inspection: GET /_r/requests (records of the last 5000 requests: api, model, stream, key kind,
reasoning fields, status, peer close), DELETE /_r/requests, GET /_r/stats (counts by model:
requests, failures), DELETE /_r/stats (also resets failfirst counters).
Every connection gets TCP_NODELAY; keep-alive is supported. Loopback only; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import random
import re
import signal
import socket
import time

OPENAI_KEY_PREFIX = "sk-upstream-"
ANTHROPIC_KEY_PREFIX = "sk-ant-upstream-"
MAX_RECORDS = 5000
HANG_LIMIT_S = 30.0

_ids = itertools.count(1)
RECORDS: collections.deque = collections.deque(maxlen=MAX_RECORDS)
STATS: dict[str, dict[str, int]] = {}
SEEN: dict[str, int] = {}
RNG = random.Random(0)
STOP: asyncio.Event | None = None

REASON = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
          405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def send(self, status: int, body: bytes, ctype="application/json", headers=()):
        head = [f"HTTP/1.1 {status} {REASON.get(status, 'Status')}", f"Content-Type: {ctype}",
                f"Content-Length: {len(body)}", "Server: resilience-mock/1"]
        head += [f"{k}: {v}" for k, v in headers]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self.writer.drain()

    async def send_json(self, status: int, obj, headers=()):
        await self.send(status, json.dumps(obj).encode(), headers=headers)

    async def start_stream(self, ctype="text/event-stream; charset=utf-8"):
        head = ["HTTP/1.1 200 OK", f"Content-Type: {ctype}", "Transfer-Encoding: chunked", "Cache-Control: no-cache",
                "Server: resilience-mock/1"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def chunk(self, data: str):
        b = data.encode()
        self.writer.write(b"%x\r\n%s\r\n" % (len(b), b))
        await self.writer.drain()

    async def end(self):
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()


# --------------------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------------------
def sse(obj, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + "data: " + json.dumps(obj, separators=(",", ":")) + "\n\n"


def error_body(api: str, status: int, message: str) -> dict:
    if api == "anthropic":
        t = {401: "authentication_error", 529: "overloaded_error", 503: "overloaded_error"}.get(status, "api_error")
        return {"type": "error", "error": {"type": t, "message": message}, "request_id": f"req_rmock{next(_ids)}"}
    t = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": t, "param": None, "code": "invalid_api_key" if status == 401 else None}}


def chat_events(model: str, text: str, usage: bool) -> list[str]:
    cid, created = f"chatcmpl-rmock{next(_ids)}", int(time.time())

    def ch(delta, finish=None):
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    words = text.split(" ")
    out = [sse(ch({"role": "assistant", "content": ""}))]
    out += [sse(ch({"content": (" " if i else "") + w})) for i, w in enumerate(words)]
    out.append(sse(ch({}, "stop")))
    if usage:
        out.append(sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [],
                        "usage": {"prompt_tokens": 5, "completion_tokens": len(words), "total_tokens": 5 + len(words)}}))
    out.append("data: [DONE]\n\n")
    return out


def chat_full(model: str, text: str) -> dict:
    return {"id": f"chatcmpl-rmock{next(_ids)}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}


def anthropic_events(model: str, text: str) -> list[str]:
    mid = f"msg_rmock{next(_ids)}"
    words = text.split(" ")
    out = [sse({"type": "message_start", "message": {"id": mid, "type": "message", "role": "assistant", "model": model,
                                                     "content": [], "stop_reason": None, "stop_sequence": None,
                                                     "usage": {"input_tokens": 5, "output_tokens": 1}}}, "message_start"),
           sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start")]
    out += [sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": (" " if i else "") + w}},
                "content_block_delta") for i, w in enumerate(words)]
    out += [sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                 "usage": {"output_tokens": len(words)}}, "message_delta"),
            sse({"type": "message_stop"}, "message_stop")]
    return out


def anthropic_full(model: str, text: str) -> dict:
    return {"id": f"msg_rmock{next(_ids)}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 3}}


# --------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------
def count(model: str, failed: bool):
    s = STATS.setdefault(model, {"requests": 0, "failed": 0})
    s["requests"] += 1
    s["failed"] += int(failed)


async def inspect(conn: Conn, method: str, path: str):
    if path == "/_r/requests":
        if method == "DELETE":
            RECORDS.clear()
            return await conn.send_json(200, {"cleared": True})
        return await conn.send_json(200, list(RECORDS))
    if path == "/_r/stats":
        if method == "DELETE":
            STATS.clear()
            SEEN.clear()
            return await conn.send_json(200, {"cleared": True})
        return await conn.send_json(200, STATS)
    return await conn.send_json(200, {"ok": True})


async def dispatch(conn: Conn, method: str, path: str, headers: dict, raw: bytes):
    if path.startswith("/_r/"):
        return await inspect(conn, method, path)
    api = {"/v1/chat/completions": "chat", "/v1/messages": "anthropic"}.get(path)
    if api is None:
        return await conn.send_json(404, {"error": {"message": f"no route {path}", "type": "invalid_request_error", "param": None, "code": None}})
    if method != "POST":
        return await conn.send_json(405, error_body(api, 405, "method not allowed"))
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return await conn.send_json(400, error_body(api, 400, "body is not JSON"))
    model = str(body.get("model") or "")
    stream = bool(body.get("stream"))
    if api == "chat":
        auth = headers.get("authorization", "")
        key_ok = auth.startswith("Bearer " + OPENAI_KEY_PREFIX)
    else:
        key_ok = headers.get("x-api-key", "").startswith(ANTHROPIC_KEY_PREFIX) and bool(headers.get("anthropic-version"))
    rec = {"id": next(_ids), "t": time.time(), "api": api, "path": path, "model": model, "stream": stream,
           "key": "good" if key_ok else "bad", "status": None,
           "thinking": body.get("thinking"), "reasoning_effort": body.get("reasoning_effort"),
           "leaked": "gw-test-key-" in raw.decode("utf-8", "replace") or any("gw-test-key-" in v for v in headers.values())}
    RECORDS.append(rec)

    async def fail(status: int, message: str, extra=()):
        rec["status"] = status
        count(model, True)
        await conn.send_json(status, error_body(api, status, message), headers=extra)

    if not key_ok:
        return await fail(401, "Incorrect API key provided (resilience mock).")
    if rec["leaked"]:
        return await fail(400, "LEAKED_CLIENT_KEY")
    m = re.fullmatch(r"flaky-(\d+(?:\.\d+)?)", model)
    if m and RNG.random() * 100 < float(m.group(1)):
        return await fail(500, "flaky failure (resilience mock)")
    m = re.fullmatch(r"failfirst-(\d+)(-.*)?", model)
    if m:
        SEEN[model] = SEEN.get(model, 0) + 1
        if SEEN[model] <= int(m.group(1)):
            return await fail(503, f"failing the first {m.group(1)} requests (resilience mock)")
    m = re.fullmatch(r"slowfirst-(\d+)(-.*)?", model)
    if m:
        SEEN[model] = SEEN.get(model, 0) + 1
        if SEEN[model] > 1:
            return await fail(503, "only the first request succeeds (resilience mock)")
        await asyncio.sleep(int(m.group(1)) / 1000.0)  # then a normal answer
    if model == "overloaded-first" and not stream:
        return await fail(529 if api == "anthropic" else 503, "Overloaded")
    silent_ms = None
    m = re.fullmatch(r"silent-(\d+)", model)
    if m:
        silent_ms = int(m.group(1))
    if model == "hang":
        silent_ms = int(HANG_LIMIT_S * 1000)
    if silent_ms is not None and not stream:
        await watch_peer(conn, rec, silent_ms / 1000.0)
        if model == "hang":
            return False

    text = f"rmock({model}) reply"
    if not stream:
        rec["status"] = 200
        count(model, False)
        return await conn.send_json(200, anthropic_full(model, text) if api == "anthropic" else chat_full(model, text))

    await conn.start_stream()
    rec["status"] = 200
    if model == "overloaded-first":
        count(model, True)
        rec["status"] = "error-in-stream"
        if api == "anthropic":
            await conn.chunk(sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error"))
        else:
            await conn.chunk(sse({"error": {"message": "The server is overloaded.", "type": "server_error", "param": None, "code": None}}))
        await conn.end()
        return True
    count(model, False)
    events = anthropic_events(model, text) if api == "anthropic" else chat_events(
        model, text, bool((body.get("stream_options") or {}).get("include_usage")))
    if silent_ms is not None:
        for e in events[:2]:
            await conn.chunk(e)
        rec["status"] = "silent"
        if await watch_peer(conn, rec, silent_ms / 1000.0) or model == "hang":
            return False
        events = events[2:]
        rec["status"] = 200
    for e in events:
        await conn.chunk(e)
    await conn.end()
    return True


async def watch_peer(conn: Conn, rec: dict, seconds: float) -> bool:
    """Waits `seconds` while watching the socket; True (and a note in the record) when the
    peer closed the connection meanwhile."""
    t0 = time.monotonic()
    try:
        data = await asyncio.wait_for(conn.reader.read(1), timeout=seconds)
    except asyncio.TimeoutError:
        return False
    except (ConnectionError, OSError):
        data = b""
    if data:  # a pipelined next request; we do not serve it
        return True
    rec["peerClosed"] = True
    rec["peerClosedAfterMs"] = round((time.monotonic() - t0) * 1000.0, 1)
    return True


async def read_request(reader: asyncio.StreamReader):
    line = await reader.readline()
    if not line:
        return None
    method, target, _ = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
    headers = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                break
            parts.append(await reader.readexactly(size))
            await reader.readline()
        raw = b"".join(parts)
    else:
        n = int(headers.get("content-length") or 0)
        raw = await reader.readexactly(n) if n > 0 else b""
    return method, target.split("?", 1)[0], headers, raw


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
    conn = Conn(reader, writer)
    try:
        while True:
            req = await read_request(reader)
            if req is None:
                break
            method, path, headers, raw = req
            keep = await dispatch(conn, method, path, headers, raw)
            if keep is False or headers.get("connection", "").lower() == "close":
                break
    except (ConnectionError, asyncio.IncompleteReadError, ValueError, OSError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # pragma: no cover - best effort
            pass


async def amain(host: str, port: int):
    global STOP
    STOP = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, STOP.set)
    server = await asyncio.start_server(handle, host, port, backlog=512, reuse_address=True)
    print(f"READY {server.sockets[0].getsockname()[1]}", flush=True)
    await STOP.wait()
    server.close()  # open connections are cancelled by asyncio.run on return


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    RNG.seed(args.seed)
    asyncio.run(amain(args.host, args.port))


if __name__ == "__main__":
    main()
