#!/usr/bin/python3
"""hydra-bench --api=openai against the HTTP stub, and against a real
`hydra serve --http_port` when the binary has that flag and a model is here.

Against hydra_stub_openai_server: closed-loop, Poisson and sweep runs
complete with the counts asked for; the JSON summary agrees with the
per-request file (loadgen_test.check_agreement); every request body carries
what the gRPC request does (stream with include_usage, max_tokens,
temperature, ignore_eos when set, the model /v1/models lists); chunks of
several tokens are counted from the final usage, or exactly from a running
usage in every chunk; a wrong API key, an unreachable server, prompts too
long for the context and bad flags each give a clear message and a non-zero
exit. Against hydra: prompts are exactly --input_len tokens as hydra counts
them and outputs exactly --output_len.

Usage: loadgen_openai_test.py HYDRA_BENCH STUB_OPENAI_SERVER [HYDRA MODEL_DIR]
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.join(HERE, "..")]
from free_ports import free_ports  # noqa: E402
# loadgen_test puts tests/ and bench/ on the path as well.
from loadgen_test import API_KEY, Bench, check, check_agreement, fail  # noqa: E402
from plot_bench import read_requests  # noqa: E402


class Server:
    """A process serving HTTP on `port`, stopped on exit."""

    def __init__(self, args, port, work, name):
        self.log = open(os.path.join(work, name + ".log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.port, self.name = port, name

    def wait_healthy(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                fail(f"{self.name} exited {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        fail(f"{self.name} never answered GET /health with 200")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def openai_bench(binary, port, work):
    """Bench.run with --api=openai against 127.0.0.1:port."""
    bench = Bench(binary, f"127.0.0.1:{port}", work)
    return lambda name, *flags, **kw: bench.run(name, "--api=openai", *flags, **kw)


def stub_checks(bench_binary, stub_binary, work):
    port, chunky_port, running_port, dead_port = free_ports(4)
    log_path = os.path.join(work, "stub_requests.jsonl")
    stubs = [
        Server([stub_binary, f"--port={port}", "--api_key=" + API_KEY,
                "--max_model_len=200", "--requests_log=" + log_path], port, work, "stub"),
        Server([stub_binary, f"--port={chunky_port}", "--api_key=" + API_KEY,
                "--tokens_per_chunk=3"], chunky_port, work, "stub_chunky"),
        Server([stub_binary, f"--port={running_port}", "--api_key=" + API_KEY,
                "--tokens_per_chunk=4", "--usage_every_chunk"], running_port, work, "stub_running"),
    ]
    try:
        for s in stubs:
            s.wait_healthy(30)
        bench = openai_bench(bench_binary, port, work)

        # Closed loop: counts, lengths, and the summary against the rows.
        closed = os.path.join(work, "closed.jsonl")
        rc, out, summary = bench("closed", "--concurrency=4", "--num_requests=16",
                                 "--input_len=24", "--output_len=12", "--warmup_requests=2",
                                 "--requests_out=" + closed)
        check(rc == 0, f"closed loop exited {rc}")
        check(summary["api"] == "openai" and summary["model"]["name"] == "stub",
              "the summary names the API and the model /v1/models listed")
        check("(openai): model stub (OpenAI API, context 200)" in out, "the header line")
        run = summary["runs"][0]
        check(run["completed"] == 16 and run["failed"] == 0, "closed loop: 16 ok, 0 failed")
        rows = read_requests(closed)
        check(all(r["input_tokens"] == 24 for r in rows), "prompts are exactly --input_len tokens")
        check(all(r["output_tokens"] == 12 and r["finish_reason"] == "length" for r in rows),
              "outputs are exactly --output_len tokens, finish_reason length")
        check(all(len(r["itl_ms"]) == 11 and r["ttft_ms"] > 0 for r in rows),
              "one inter-token gap per token after the first")
        check_agreement(summary, rows, abs_tol=1e-6)

        # What went over the wire: the gRPC request's fields as JSON.
        with open(log_path) as f:
            bodies = [json.loads(line) for line in f]
        streamed = [b for b in bodies if b.get("stream")]
        check(len(streamed) == 18, f"{len(streamed)} streamed requests, want 2 warm-up + 16")
        for b in streamed:
            check(b["stream_options"] == {"include_usage": True}, "stream_options.include_usage")
            check(b["model"] == "stub" and b["max_tokens"] == 12 and b["temperature"] == 0
                  and b["ignore_eos"] is True, f"request body {b}")
            check(len(b["prompt"].split()) == 23, "a 24-token prompt is 23 words + BOS")
        check(all(b["max_tokens"] == 1 for b in bodies if not b.get("stream")),
              "prompts are sized with one-token completions")
        open(log_path, "w").close()
        rc, _, _ = bench("sampling", "--concurrency=1", "--num_requests=2", "--input_len=8",
                         "--output_len=3", "--warmup_requests=0", "--ignore_eos=false",
                         "--temperature=0.7")
        check(rc == 0, f"sampling run exited {rc}")
        with open(log_path) as f:
            streamed = [json.loads(line) for line in f if '"stream":true' in line]
        check(all("ignore_eos" not in b and abs(b["temperature"] - 0.7) < 1e-6 for b in streamed),
              f"--ignore_eos=false sends none, --temperature is sent: {streamed}")

        # Poisson arrivals and a sweep.
        poisson = os.path.join(work, "poisson.csv")
        rc, _, summary = bench("poisson", "--request_rate=40", "--num_requests=24",
                               "--input_len=16", "--output_len=8", "--warmup_requests=0",
                               "--requests_out=" + poisson)
        check(rc == 0, f"Poisson run exited {rc}")
        check(summary["runs"][0]["completed"] == 24, "Poisson: 24 ok")
        check_agreement(summary, read_requests(poisson), abs_tol=1e-3)
        rc, out, summary = bench("sweep", "--concurrency=1,8", "--num_requests=16",
                                 "--input_len=16", "--output_len=8", "--warmup_requests=0")
        check(rc == 0 and [r["concurrency"] for r in summary["runs"]] == [1, 8]
              and "| concurrency | req/s |" in out, "a sweep over concurrencies")

        # Chunks of 3 tokens, usage only at the end: its count wins.
        chunky = os.path.join(work, "chunky.jsonl")
        rc, _, summary = openai_bench(bench_binary, chunky_port, work)(
            "chunky", "--concurrency=2", "--num_requests=6", "--input_len=16",
            "--output_len=10", "--warmup_requests=0", "--requests_out=" + chunky)
        check(rc == 0, f"chunky run exited {rc}")
        rows = read_requests(chunky)
        check(all(r["output_tokens"] == 10 and len(r["itl_ms"]) == 9 for r in rows),
              "a 10-token completion in 4 chunks counts 10 tokens, 9 gaps")
        check(summary["runs"][0]["output_tokens"] == 60, "60 output tokens in all")
        # Chunks of 4 with a running usage: exactly 4, 4, 2.
        running = os.path.join(work, "running.jsonl")
        rc, _, _ = openai_bench(bench_binary, running_port, work)(
            "running", "--concurrency=2", "--num_requests=4", "--input_len=16",
            "--output_len=10", "--warmup_requests=0", "--requests_out=" + running)
        check(rc == 0, f"running-usage run exited {rc}")
        for r in read_requests(running):
            gaps = r["itl_ms"]
            check(r["output_tokens"] == 10 and gaps[:3] == [0, 0, 0]
                  and len(set(gaps[3:7])) == 1 and len(set(gaps[7:])) == 1,
                  f"chunks of 4, 4 and 2 tokens by their usage: {gaps}")

        # Failures, each named.
        rc, out, _ = bench("wrong_key", api_key="wrong")
        check(rc != 0 and "UNAUTHENTICATED" in out, "a rejected API key is reported")
        rc, out, _ = bench("unreachable", "--connect_timeout=2",
                           target=f"127.0.0.1:{dead_port}")
        check(rc != 0 and f"cannot connect to 127.0.0.1:{dead_port}" in out,
              "an unreachable server is named")
        dataset = os.path.join(work, "long.jsonl")
        with open(dataset, "w") as f:
            f.write(json.dumps({"prompt": "the dog ran " * 80, "max_tokens": 8}) + "\n")
        rc, out, _ = bench("too_long", "--dataset=" + dataset, "--warmup_requests=0",
                           "--num_requests=3")
        check(rc != 0 and "INVALID_ARGUMENT 3" in out and "context" in out,
              "requests the server refuses are counted by status, with its message")
        rc, out, _ = bench("too_long_synthetic", "--input_len=190", "--output_len=20")
        check(rc == 2 and "more than the server's context (max_context) of 200" in out,
              "max_model_len of /v1/models bounds synthetic prompts")
        rc, out, _ = bench("bad_api", "--api=rest")
        check(rc == 2 and "--api must be grpc or openai" in out, "a bad --api is refused")
        rc, out, _ = Bench(bench_binary, f"127.0.0.1:{port}", work).run("model_grpc", "--model=x")
        check(rc == 2 and "--model is for --api=openai" in out, "--model needs --api=openai")
        rc, out, _ = bench("https", target="https://127.0.0.1:443")
        check(rc == 2 and "https is not supported" in out, "https targets are refused")
        for s in stubs:
            check(s.proc.poll() is None, f"{s.name} is still serving")
    finally:
        for s in stubs:
            s.stop()


def hydra_checks(bench_binary, hydra, model, work):
    check(os.access(hydra, os.X_OK), f"no hydra binary at {hydra}")
    helpfull = subprocess.run([hydra, "--helpfull"], capture_output=True, text=True).stdout
    if "--http_port" not in helpfull:
        print(f"note: {hydra} has no --http_port yet; skipping the real server")
        return
    if not os.path.exists(os.path.join(model, "config.json")):
        print(f"note: no model at {model}; skipping the real server")
        return
    port, http_port, metrics_port = free_ports(3)
    server = Server([hydra, "serve", "--model=" + model, "--host=127.0.0.1", f"--port={port}",
                     f"--http_port={http_port}", f"--metrics_port={metrics_port}",
                     "--api_key=" + API_KEY], http_port, work, "hydra")
    try:
        server.wait_healthy(120)
        bench = openai_bench(bench_binary, http_port, work)
        rows_path = os.path.join(work, "hydra.jsonl")
        rc, _, summary = bench("hydra", "--concurrency=4", "--num_requests=12",
                               "--input_len=24", "--output_len=12", "--warmup_requests=2",
                               "--requests_out=" + rows_path)
        check(rc == 0, f"hydra run exited {rc}")
        run = summary["runs"][0]
        check(run["completed"] == 12 and run["failed"] == 0, "hydra: 12 ok, 0 failed")
        rows = read_requests(rows_path)
        check(all(r["input_tokens"] == 24 for r in rows),
              "prompts are exactly --input_len tokens as hydra counts them: "
              + str([r["input_tokens"] for r in rows]))
        check(all(r["output_tokens"] == 12 and r["finish_reason"] == "length" for r in rows),
              "ignore_eos makes outputs exactly --output_len tokens: "
              + str([(r["output_tokens"], r["finish_reason"]) for r in rows]))
        check_agreement(summary, rows, abs_tol=1e-6)
        rc, out, _ = bench("hydra_wrong_key", api_key="wrong")
        check(rc != 0 and "UNAUTHENTICATED" in out, "hydra refuses a wrong API key")
        check(server.proc.poll() is None, "hydra is still serving")
        print("ok: hydra-bench --api=openai against hydra serve --http_port")
    finally:
        server.stop()


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    bench_binary, stub_binary = sys.argv[1:3]
    work = tempfile.mkdtemp(prefix="loadgen_openai_test.")
    stub_checks(bench_binary, stub_binary, work)
    if len(sys.argv) == 5:
        hydra_checks(bench_binary, sys.argv[3], sys.argv[4], work)
    print("PASS")


if __name__ == "__main__":
    main()
