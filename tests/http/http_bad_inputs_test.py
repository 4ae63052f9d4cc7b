"""The OpenAI front end against bad input: each case gets its status and an
OpenAI-shaped error body ({"error": {message, type, param, code}}) naming the
field at fault; slow, truncated, oversized, pipelined and broken requests are
answered or closed without hanging. Afterwards the server still serves a
correct completion and holds no KV blocks. Also: SSE framing as `curl -N`
sees it.

    python3 http_bad_inputs_test.py HYDRA MODEL_DIR DATA_DIR
Exit code 77 = skipped (no model).
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from free_ports import free_ports  # noqa: E402

KEY = "test-key"
MAX_BODY = 65536
TIMEOUT_MS = 1000


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


class Server:
    def __init__(self, hydra, model, data, work, extra=(), tls=None):
        self.port, self.metrics_port, self.http_port = free_ports(3)
        self.tls = tls
        self.log_path = os.path.join(work, "serve.log")
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [hydra, "serve", "--model=" + model, "--host=127.0.0.1",
             "--port=%d" % self.port, "--metrics_port=%d" % self.metrics_port,
             "--http_port=%d" % self.http_port, "--kv_cache_bytes=67108864",
             "--drain_seconds=5", "--api_key=" + KEY,
             "--http_max_body_bytes=%d" % MAX_BODY,
             "--http_header_timeout_ms=%d" % TIMEOUT_MS,
             "--http_body_timeout_ms=%d" % TIMEOUT_MS,
             "--chat_template=" + os.path.join(data, "simple_chat_template.jinja")]
            + list(extra),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            check(self.proc.poll() is None, "server exited early:\n" + self.output())
            try:
                if self.request("GET", "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        fail("not healthy within 60 s:\n" + self.output())

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def request(self, method, path, body=None, headers=None, auth=True):
        if self.tls is not None:
            conn = http.client.HTTPSConnection("127.0.0.1", self.http_port, timeout=30,
                                               context=self.tls)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=30)
        h = {"Content-Type": "application/json"}
        if auth:
            h["Authorization"] = "Bearer " + KEY
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, data, r

    def metric(self, name):
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return float("nan")

    def wait_no_blocks(self, what):
        deadline = time.time() + 5
        while time.time() < deadline:
            if (self.metric('hydra_kv_cache_blocks{state="used"}') == 0 and
                    self.metric("hydra_requests_running") == 0):
                return
            time.sleep(0.1)
        fail("%s: KV blocks still used: %s" %
             (what, self.metric('hydra_kv_cache_blocks{state="used"}')))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        check(code == 0, "server exited %d on SIGTERM:\n%s" % (code, self.output()))


def check_error(status, data, want_status, want_param, what):
    check(status == want_status, "%s: status %d, want %d: %r" % (what, status, want_status, data))
    try:
        body = json.loads(data)
    except ValueError:
        fail("%s: the body is not JSON: %r" % (what, data))
    e = body.get("error")
    check(isinstance(e, dict), "%s: no error object: %r" % (what, body))
    check(set(e) == {"message", "type", "param", "code"}, "%s: error keys %r" % (what, sorted(e)))
    check(isinstance(e["message"], str) and e["message"], "%s: no message" % what)
    check(isinstance(e["type"], str) and e["type"], "%s: no type" % what)
    check(e["param"] == want_param, "%s: param %r, want %r (%s)" % (what, e["param"], want_param, e["message"]))
    if want_param is not None:
        check(want_param.split("[")[0].split(".")[0] in e["message"],
              "%s: the message does not name the field: %s" % (what, e["message"]))
    return e


def raw(server, data, read_timeout=10.0, close_after_send=False):
    """Sends bytes on a fresh connection; returns everything read until the
    server closes (or read_timeout passes)."""
    s = socket.create_connection(("127.0.0.1", server.http_port), timeout=read_timeout)
    if data:
        s.sendall(data)
    if close_after_send:
        s.close()
        return b""
    out = b""
    start = time.time()
    try:
        while time.time() - start < read_timeout:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def split_responses(data):
    """Parses consecutive HTTP/1.1 responses (Content-Length bodies)."""
    responses = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        check(sep, "incomplete response head: %r" % data[:200])
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
        n = int(headers.get("content-length", "0"))
        responses.append((status, headers, rest[:n]))
        data = rest[n:]
    return responses


def check_tls(hydra, model, data, work):
    """The HTTP front end with the gRPC TLS flags' certificate and key."""
    if not shutil.which("openssl"):
        print("note: no openssl; TLS not checked")
        return 0
    cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
    made = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                           "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"],
                          capture_output=True)
    check(made.returncode == 0, "openssl: %s" % made.stderr)
    import ssl
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False
    server = Server(hydra, model, data, os.path.join(work), ["--tls_cert=" + cert, "--tls_key=" + key],
                    tls=context)
    try:
        status, body, _ = server.request("POST", "/v1/completions",
                                         {"prompt": "Once upon a time", "max_tokens": 4,
                                          "temperature": 0, "stream": True})
        check(status == 200 and body.decode().endswith("data: [DONE]\n\n"),
              "streamed over TLS: %d %r" % (status, body[-100:]))
        status, body, _ = server.request("POST", "/v1/completions", {"prompt": "Hi"}, auth=False)
        check_error(status, body, 401, None, "no API key over TLS")
        # Plain HTTP on the TLS port gets no answer.
        check(not raw(server, b"GET /health HTTP/1.1\r\n\r\n", read_timeout=5).startswith(b"HTTP"),
              "plain HTTP answered on the TLS port")
    finally:
        server.stop()
    return 3


def main():
    if len(sys.argv) != 4:
        fail("usage: http_bad_inputs_test.py HYDRA MODEL_DIR DATA_DIR")
    hydra, model, data = sys.argv[1:]
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        print("SKIP: no model at %s" % model)
        sys.exit(77)
    work = tempfile.mkdtemp(prefix="hydra_http_bad_")
    server = Server(hydra, model, data, work)
    cases = 0
    try:
        C = "/v1/completions"
        H = "/v1/chat/completions"
        ok_chat = [{"role": "user", "content": "Hi"}]
        json_cases = [
            # (path, body, status, param)
            (C, {"prompt": "Hi", "max_tokens": "ten"}, 400, "max_tokens"),
            (C, {"prompt": "Hi", "max_tokens": 0}, 400, "max_tokens"),
            (C, {"prompt": "Hi", "max_tokens": 10 ** 12}, 400, "max_tokens"),
            (C, {"prompt": "Hi", "max_tokens": 10.5}, 400, "max_tokens"),
            (C, {"prompt": "Hi", "max_tokens": 1000}, 400, "max_tokens"),
            (C, {"prompt": "Hi", "temperature": "hot"}, 400, "temperature"),
            (C, {"prompt": "Hi", "temperature": -1}, 400, "temperature"),
            (C, {"prompt": "Hi", "top_p": 0}, 400, "top_p"),
            (C, {"prompt": "Hi", "top_p": 1.5}, 400, "top_p"),
            (C, {"prompt": "Hi", "top_k": -5}, 400, "top_k"),
            (C, {"prompt": "Hi", "min_p": 2}, 400, "min_p"),
            (C, {"prompt": "Hi", "presence_penalty": 3}, 400, "presence_penalty"),
            (C, {"prompt": "Hi", "frequency_penalty": -3}, 400, "frequency_penalty"),
            (C, {"prompt": "Hi", "repetition_penalty": 0}, 400, "repetition_penalty"),
            (C, {"prompt": "Hi", "min_tokens": 50, "max_tokens": 10}, 400, "min_tokens"),
            (C, {"prompt": "Hi", "seed": "x"}, 400, "seed"),
            (C, {"prompt": "Hi", "logprobs": 21}, 400, "logprobs"),
            (C, {"prompt": "Hi", "logprobs": True}, 400, "logprobs"),
            (C, {"prompt": "Hi", "n": 17}, 400, "n"),
            (C, {"prompt": "Hi", "n": 0}, 400, "n"),
            (C, {"prompt": "Hi", "stop": 5}, 400, "stop"),
            (C, {"prompt": "Hi", "stop": [""]}, 400, "stop[0]"),
            (C, {"prompt": "Hi", "stop": ["a"] * 9}, 400, "stop"),
            (C, {"prompt": "Hi", "stop_token_ids": [99999]}, 400, "stop_token_ids[0]"),
            (C, {"prompt": "Hi", "priority": 1000}, 400, "priority"),
            (C, {"prompt": "Hi", "stream": "yes"}, 400, "stream"),
            (C, {"prompt": "Hi", "stream": True, "stream_options": 1}, 400, "stream_options"),
            (C, {"prompt": "Hi", "echo": True}, 400, "echo"),
            (C, {"prompt": "Hi", "suffix": "end"}, 400, "suffix"),
            (C, {"prompt": "Hi", "best_of": 3}, 400, "best_of"),
            (C, {"prompt": "Hi", "logit_bias": {"5": 10}}, 400, "logit_bias"),
            (C, {"prompt": ""}, 400, "prompt"),
            (C, {"prompt": []}, 400, "prompt"),
            (C, {"max_tokens": 5}, 400, "prompt"),
            (C, {"prompt": ["a", "b"]}, 400, "prompt"),
            (C, {"prompt": {"text": "a"}}, 400, "prompt"),
            (C, {"prompt": [1, 99999]}, 400, "prompt[1]"),
            (C, {"prompt": [1, "a"]}, 400, "prompt[1]"),
            (C, {"prompt": "dog " * 400}, 400, "prompt"),
            (C, {"prompt": "Hi", "model": "gpt-4"}, 404, "model"),
            (H, {"max_tokens": 5}, 400, "messages"),
            (H, {"messages": []}, 400, "messages"),
            (H, {"messages": "Hi"}, 400, "messages"),
            (H, {"messages": [{"role": "tool", "content": "x"}]}, 400, "messages[0].role"),
            (H, {"messages": [{"content": "x"}]}, 400, "messages[0].role"),
            (H, {"messages": [{"role": "user", "content": 5}]}, 400, "messages[0].content"),
            (H, {"messages": [{"role": "user", "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]},
             400, "messages[0].content[1].type"),
            (H, {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
             400, "messages[0].content[0].type"),
            (H, {"messages": ok_chat, "tools": [{"type": "function", "function": {"name": "f"}}]},
             400, "tools"),
            (H, {"messages": ok_chat, "tool_choice": "auto"}, 400, "tool_choice"),
            (H, {"messages": ok_chat, "functions": [{"name": "f"}]}, 400, "functions"),
            (H, {"messages": ok_chat, "response_format": {"type": "json_object"}}, 400,
             "response_format"),
            (H, {"messages": ok_chat, "logprobs": True, "top_logprobs": 21}, 400, "top_logprobs"),
            (H, {"messages": ok_chat, "top_logprobs": 2}, 400, "top_logprobs"),
            (H, {"messages": ok_chat, "max_completion_tokens": "x"}, 400,
             "max_completion_tokens"),
            (H, {"messages": ok_chat, "max_completion_tokens": 0}, 400,
             "max_completion_tokens"),
            (H, {"messages": [{"role": "user", "content": "dog " * 400}]}, 400, "messages"),
            (H, {"messages": ok_chat, "model": "nope"}, 404, "model"),
            ("/tokenize", {"prompt": 5}, 400, "prompt"),
            ("/tokenize", {}, 400, "prompt"),
            ("/detokenize", {"tokens": [-1]}, 400, "tokens[0]"),
            ("/detokenize", {"tokens": "abc"}, 400, "tokens"),
        ]
        for path, body, want_status, param in json_cases:
            status, data_, _ = server.request("POST", path, body)
            check_error(status, data_, want_status, param, "%s %s" % (path, json.dumps(body)[:80]))
            cases += 1

        raw_body_cases = [
            ("malformed JSON", C, b'{"prompt": "Hi", ', {}, 400),
            ("JSON that is not an object", C, b"[1, 2, 3]", {}, 400),
            ("an empty body", C, b"", {}, 400),
            ("deeply nested JSON", C, b"[" * 30000 + b"]" * 30000, {}, 400),
            ("non-UTF-8 bytes in a string", C, b'{"prompt": "caf\xe9 \xff"}', {}, 400),
            ("a lone surrogate escape", C, b'{"prompt": "\\udc80"}', {}, 400),
            ("Content-Type text/plain", C, b'{"prompt": "Hi"}', {"Content-Type": "text/plain"}, 415),
        ]
        for what, path, body, headers, want_status in raw_body_cases:
            status, data_, _ = server.request("POST", path, body, headers)
            check_error(status, data_, want_status, None, what)
            cases += 1

        status, data_, _ = server.request("POST", C, {"prompt": "Hi"}, auth=False)
        check_error(status, data_, 401, None, "no API key")
        status, data_, _ = server.request("POST", C, {"prompt": "Hi"},
                                          headers={"Authorization": "Bearer wrong"})
        check_error(status, data_, 401, None, "a wrong API key")
        status, data_, _ = server.request("GET", "/health", auth=False)
        check(status == 200, "health needs no key: %d" % status)
        status, data_, _ = server.request("GET", "/v1/nowhere")
        check_error(status, data_, 404, None, "an unknown path")
        status, data_, r = server.request("GET", C)
        check_error(status, data_, 405, None, "GET on /v1/completions")
        check(r.getheader("Allow") == "POST", "Allow: %r" % r.getheader("Allow"))
        status, data_, _ = server.request("DELETE", "/v1/models")
        check_error(status, data_, 405, None, "DELETE on /v1/models")
        cases += 6

        # A body over the limit: 413 (announced by Content-Length, and sent).
        big = json.dumps({"prompt": "x" * (MAX_BODY + 10)}).encode()
        status, data_, _ = server.request("POST", C, big)
        check_error(status, data_, 413, None, "a body over the limit")
        out = raw(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n"
                  b"Authorization: Bearer " + KEY.encode() + b"\r\n\r\n")
        (status, _, body), = split_responses(out)
        check_error(status, body, 413, None, "a huge Content-Length")
        # A header over the limit: 431.
        out = raw(server, b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 431"), "a huge header: %r" % out[:100])
        # Not HTTP at all.
        out = raw(server, b"HELLO\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 400"), "garbage: %r" % out[:100])
        cases += 4

        # Slowloris: a header that never ends, a body that never comes, a
        # body shorter than its Content-Length: 408 within the timeouts.
        for what, data_ in [
            ("slow header", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: "),
            ("slow body", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n"),
            ("truncated body", b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
             b"Content-Length: 100\r\n\r\n{\"prompt\": \"Hi\""),
        ]:
            start = time.time()
            out = raw(server, data_, read_timeout=10)
            took = time.time() - start
            check(out.startswith(b"HTTP/1.1 408"), "%s: %r" % (what, out[:120]))
            check(took < TIMEOUT_MS / 1000 + 3, "%s: answered after %.1f s" % (what, took))
            (status, _, body), = split_responses(out)
            check_error(status, body, 408, None, what)
            cases += 1
        # An idle keep-alive connection is closed quietly.
        start = time.time()
        out = raw(server, b"", read_timeout=10)
        check(out == b"" and time.time() - start < TIMEOUT_MS / 1000 + 3, "idle: %r" % out)

        # Pipelined keep-alive requests: answered in order on one connection.
        auth = b"Authorization: Bearer " + KEY.encode() + b"\r\n"
        completion = json.dumps({"prompt": "Once upon a time", "max_tokens": 4,
                                 "temperature": 0}).encode()
        pipelined = (
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(completion) +
            completion +
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Length: 5\r\n\r\n{bad}" +
            b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        responses = split_responses(raw(server, pipelined))
        check([r[0] for r in responses] == [200, 200, 400, 200],
              "pipelined statuses: %r" % [r[0] for r in responses])
        check(json.loads(responses[1][2])["choices"][0]["text"] == ", there was a",
              "pipelined completion: %r" % responses[1][2])
        check(json.loads(responses[3][2])["version"], "pipelined version")
        # Broken keep-alive: a valid request, then garbage: 200, 400, closed.
        responses = split_responses(raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                                        b"\x00\x01garbage\r\n\r\n"))
        check([r[0] for r in responses] == [200, 400], "broken keep-alive: %r" % responses)
        cases += 2

        # Clients that go away: mid-stream, and while a whole response is
        # being generated; their requests are cancelled and blocks freed.
        cancelled = server.metric('hydra_requests_total{finish_reason="cancelled",front_end="http"}')
        long_body = json.dumps({"prompt": "Once upon a time", "max_tokens": 240,
                                "ignore_eos": True, "stream": True}).encode()
        s = socket.create_connection(("127.0.0.1", server.http_port))
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + auth +
                  b"Content-Length: %d\r\n\r\n" % len(long_body) + long_body)
        first = s.recv(4096)
        check(first.startswith(b"HTTP/1.1 200"), "stream start: %r" % first[:100])
        s.close()
        unary = json.dumps({"prompt": "Lily", "max_tokens": 240, "ignore_eos": True}).encode()
        raw(server, b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + auth +
            b"Content-Length: %d\r\n\r\n" % len(unary) + unary, close_after_send=True)
        time.sleep(0.3)
        server.wait_no_blocks("after clients went away")
        now = server.metric('hydra_requests_total{finish_reason="cancelled",front_end="http"}')
        check(now - cancelled == 2, "cancelled %s -> %s" % (cancelled, now))
        cases += 2

        # SSE framing as curl -N sees it.
        if shutil.which("curl"):
            out = subprocess.run(
                ["curl", "-sN", "-i", "-H", "Authorization: Bearer " + KEY,
                 "-H", "Content-Type: application/json",
                 "-d", json.dumps({"prompt": "Once upon a time", "max_tokens": 6, "stream": True, "temperature": 0,
                                   "stream_options": {"include_usage": True}}),
                 "http://127.0.0.1:%d/v1/completions" % server.http_port],
                capture_output=True, timeout=30).stdout.decode()
            head, _, body = out.partition("\r\n\r\n")
            check("content-type: text/event-stream" in head.lower(), "SSE head: %s" % head)
            check("transfer-encoding: chunked" in head.lower(), "SSE head: %s" % head)
            events = body.split("\n\n")
            check(events[-1] == "", "the stream does not end with a blank line: %r" % body[-40:])
            events = events[:-1]
            check(all(e.startswith("data: ") and "\n" not in e for e in events),
                  "not one data line per event: %r" % events)
            check(events[-1] == "data: [DONE]", "last event %r" % events[-1])
            chunks = [json.loads(e[len("data: "):]) for e in events[:-1]]
            check(len(chunks) == 7, "%d chunks, want 6 tokens + usage" % len(chunks))
            check(chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6,
                  "usage chunk %r" % chunks[-1])
            check("".join(c["choices"][0]["text"] for c in chunks[:-1]) == ", there was a little girl",
                  "SSE text")
            cases += 1
        else:
            print("note: no curl; SSE framing not checked")

        # Still serving, holding nothing.
        status, data_, _ = server.request("POST", C, {"prompt": "Once upon a time", "max_tokens": 4,
                                                      "temperature": 0})
        check(status == 200 and json.loads(data_)["choices"][0]["text"] == ", there was a",
              "a completion after it all: %d %r" % (status, data_))
        server.wait_no_blocks("at the end")
        server.stop()
        cases += check_tls(hydra, model, data, work)
        print("PASS: %d bad-input cases" % cases)
    except SystemExit:
        print(server.output()[-3000:], file=sys.stderr)
        raise
    finally:
        if server.proc.poll() is None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
