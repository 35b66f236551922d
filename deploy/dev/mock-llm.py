#!/usr/bin/env python3
"""Mock OpenAI-compatible chat-completions server for the gateway's dev/test stack.

Python 3 standard library only; listens on loopback only.

  POST /v1/chat/completions   streamed (SSE, "stream": true) or plain JSON answer
  GET  /v1/models             one model, "mock-model"
  GET  /health                {"ok": true, "pid": ..., "log": <abs. path of --log or null>, "uptime_s": ...}

The answer is steered by directives anywhere in the text of the LAST user message:

  tokens=N      answer with N content chunks "t1 ", "t2 ", ... "tN " (default --tokens)
  delay=MS      sleep MS milliseconds before each chunk (default --delay-ms)
  reasoning=N   first stream N reasoning chunks "r1 ", "r2 ", ... (delta.reasoning_content)
  tool=NAME     answer with one call of tool NAME instead of text; the arguments are
                args=<json> (the rest of that line) or, for tool=bash,
                {"command":"echo mock-tool-output","description":"Echo"}, else {}
  error=CODE    answer with HTTP status CODE and an OpenAI-style error body

When the conversation ends with a tool result the answer is "Tool finished. t1 t2 t3 t4 t5 "
(at most min(tokens, 5) tokens) and no tool is called again. Title-generation requests (a system
prompt that asks for a title) are answered "Mock title" at once, without delay or directives.

Log (--log FILE, default stderr): one JSON line per request
  {"t": <time.time()>, "id": "chatcmpl-mock-N", "kind": "text|tool|after_tool|title|error",
   "tokens": N, "delay_ms": MS, "reasoning": N, "tool": NAME|null, "stream": bool,
   "model": ..., "n_messages": ..., "n_tools": ..., "last_user": <first 200 chars>}
and one line when a streamed answer ended: {"t", "id", "end": "done" | "client_disconnected"}.
With --log-tokens additionally one line per content chunk, written right after the chunk was
flushed to the socket: {"t": <time.time()>, "id": "chatcmpl-mock-N", "i": <1-based chunk index>}
(in a plain text answer chunk i is "t<i> "; title answers are not logged), to --token-log FILE
(default: the --log destination).
"""
import argparse
import json
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_BASH_ARGS = {"command": "echo mock-tool-output", "description": "Echo"}
TITLE_MARKERS = ("title generator", "generate a title", "generate a short title")


class JsonLog:
    """Thread-safe JSON-lines writer to a file (kept open, flushed per line) or stderr."""

    def __init__(self, path):
        self._lock = threading.Lock()
        self._f = open(path, "a", encoding="utf-8", buffering=1) if path else sys.stderr

    def write(self, obj):
        line = json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()


class State:
    def __init__(self, args):
        self.args = args
        self.log = JsonLog(args.log)
        self.log_path = os.path.abspath(args.log) if args.log else None
        if args.token_log and args.token_log != args.log:
            self.token_log = JsonLog(args.token_log)
        else:
            self.token_log = self.log
        self.started = time.time()
        self._lock = threading.Lock()
        self._n = 0

    def next_id(self):
        with self._lock:
            self._n += 1
            return "chatcmpl-mock-%d" % self._n, self._n


def text_of(content):
    """Text of an OpenAI message content (string or list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text"):
                out.append(str(part.get("text", "")))
        return "\n".join(out)
    return str(content)


def is_title_request(messages):
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "system":
            t = text_of(m.get("content")).lower()
            if any(marker in t for marker in TITLE_MARKERS):
                return True
    return False


def directive(text, name, cast, default):
    m = re.search(r"(?:^|\s)" + re.escape(name) + r"=(\S+)", text)
    if not m:
        return default
    try:
        return cast(m.group(1))
    except ValueError:
        return default


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mock-llm/1.0"
    state = None  # set in main()

    def log_message(self, fmt, *args):  # no access log on stderr
        pass

    def _send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _path(self):
        return self.path.split("?", 1)[0].rstrip("/")

    def do_GET(self):
        path = self._path()
        if path in ("", "/health"):
            self._send_json(200, {"ok": True, "pid": os.getpid(), "log": self.state.log_path,
                                  "uptime_s": round(time.time() - self.state.started, 3)})
        elif path.endswith("/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}]})
        else:
            self._send_json(404, {"error": {"message": "not found: " + self.path, "type": "invalid_request_error"}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if not self._path().endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": "not found: " + self.path, "type": "invalid_request_error"}})
            return
        try:
            req = json.loads(raw or b"{}")
            if not isinstance(req, dict):
                raise ValueError("body is not a JSON object")
        except ValueError as e:
            self._send_json(400, {"error": {"message": "bad request body: %s" % e, "type": "invalid_request_error"}})
            return
        self._complete(req)

    def _complete(self, req):
        st = self.state
        args = st.args
        rid, _ = st.next_id()
        messages = [m for m in (req.get("messages") or []) if isinstance(m, dict)]
        model = req.get("model") or "mock-model"
        stream = bool(req.get("stream"))
        last_user = ""
        for m in reversed(messages):
            if m.get("role") == "user":
                last_user = text_of(m.get("content"))
                break
        after_tool = bool(messages) and messages[-1].get("role") == "tool"
        title = is_title_request(messages)

        tokens = max(0, directive(last_user, "tokens", int, args.tokens))
        delay_ms = max(0.0, directive(last_user, "delay", float, args.delay_ms))
        error = None if title else directive(last_user, "error", int, None)
        tool = None if (title or after_tool) else directive(last_user, "tool", str, None)
        reasoning = 0 if (title or after_tool) else max(0, directive(last_user, "reasoning", int, 0))
        tool_args = None
        if tool:
            m = re.search(r"(?:^|\s)args=(.*)$", last_user, re.M)
            if m:
                tool_args = m.group(1).strip()
            else:
                tool_args = json.dumps(DEFAULT_BASH_ARGS if tool == "bash" else {})

        if title:
            kind, pieces, delay_ms = "title", ["Mock title"], 0.0
        elif error:
            kind, pieces = "error", []
        elif tool:
            kind, pieces = "tool", []
        elif after_tool:
            kind = "after_tool"
            pieces = ["Tool finished. "] + ["t%d " % (i + 1) for i in range(min(tokens, 5))]
        else:
            kind, pieces = "text", ["t%d " % (i + 1) for i in range(tokens)]

        st.log.write({
            "t": time.time(), "id": rid, "kind": kind, "tokens": tokens, "delay_ms": delay_ms,
            "reasoning": reasoning, "tool": tool, "stream": stream, "model": model,
            "n_messages": len(messages), "n_tools": len(req.get("tools") or []),
            "last_user": last_user[:200],
        })

        if error:
            self._send_json(error, {"error": {"message": "mock error %d" % error, "type": "server_error",
                                              "code": str(error)}})
            return

        created = int(time.time())
        n_out = len(pieces) + reasoning + (1 if tool else 0)
        usage = {"prompt_tokens": 10, "completion_tokens": n_out, "total_tokens": 10 + n_out}

        if not stream:
            msg = {"role": "assistant", "content": None if tool else "".join(pieces)}
            finish = "stop"
            if tool:
                msg["tool_calls"] = [{"id": "call_" + rid, "type": "function",
                                      "function": {"name": tool, "arguments": tool_args}}]
                finish = "tool_calls"
            self._send_json(200, {"id": rid, "object": "chat.completion", "created": created, "model": model,
                                  "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
                                  "usage": usage})
            return

        self._stream(rid, model, created, usage, pieces, reasoning, tool, tool_args, delay_ms, title)

    def _stream(self, rid, model, created, usage, pieces, reasoning, tool, tool_args, delay_ms, title):
        st = self.state
        chunked = not st.args.no_chunked
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()

        def write(data):
            if chunked:
                data = b"%x\r\n" % len(data) + data + b"\r\n"
            self.wfile.write(data)
            self.wfile.flush()

        def event(delta, finish=None, with_usage=False):
            c = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
                 "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if with_usage:
                c["usage"] = usage
            write(b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n")

        def pause():
            if delay_ms > 0:
                time.sleep(delay_ms / 1000.0)

        end = "done"
        try:
            if tool:
                event({"role": "assistant", "content": None, "tool_calls": [
                    {"index": 0, "id": "call_" + rid, "type": "function",
                     "function": {"name": tool, "arguments": ""}}]})
                half = len(tool_args) // 2
                for part in (tool_args[:half], tool_args[half:]):
                    pause()
                    event({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                event({}, "tool_calls", with_usage=True)
            else:
                event({"role": "assistant", "content": ""})
                for i in range(reasoning):
                    pause()
                    event({"reasoning_content": "r%d " % (i + 1)})
                log_tokens = st.args.log_tokens and not title
                for i, piece in enumerate(pieces):
                    if not title:
                        pause()
                    event({"content": piece})
                    if log_tokens:
                        st.token_log.write({"t": time.time(), "id": rid, "i": i + 1})
                event({}, "stop", with_usage=True)
            write(b"data: [DONE]\n\n")
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            end = "client_disconnected"
            self.close_connection = True
        st.log.write({"t": time.time(), "id": rid, "end": end})


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackServer6(LoopbackServer):
    address_family = socket.AF_INET6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="loopback address only (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=4097)
    ap.add_argument("--tokens", type=int, default=20, help="default number of content tokens (default 20)")
    ap.add_argument("--delay-ms", type=float, default=20.0, help="default delay before each chunk (default 20)")
    ap.add_argument("--log", default=None, help="append JSON request log lines here (default stderr)")
    ap.add_argument("--log-tokens", action="store_true",
                    help="also log the wall-clock time of every content chunk written")
    ap.add_argument("--token-log", default=None, help="file for --log-tokens lines (default: the --log file)")
    ap.add_argument("--no-chunked", action="store_true",
                    help="stream without chunked encoding (Connection: close, body ends at EOF)")
    args = ap.parse_args()
    if args.host not in LOOPBACK:
        ap.error("refusing to listen on non-loopback address %r" % args.host)

    Handler.state = State(args)
    server_cls = LoopbackServer6 if args.host == "::1" else LoopbackServer
    srv = server_cls((args.host, args.port), Handler)
    host = "[::1]" if args.host == "::1" else args.host
    sys.stderr.write("mock-llm listening on http://%s:%d/v1\n" % (host, srv.server_address[1]))
    sys.stderr.flush()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
