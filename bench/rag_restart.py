#!/usr/bin/python3
"""RAG over a restart: time to first token of questions over a document,
cold, from the pool, and after a restart from the disk tier. Starts and
stops `hydra serve` itself.

Usage: rag_restart.py --hydra=build/cli/hydra --model=models/qwen2.5-0.5b
           [--doc_len=1500] [--question_len=24] [--answer_tokens=8]
           [--disk_dir=/tmp/hydra_rag_tier] [--repeats=2] [--drop_caches]
           [-- serve flags...]
Prints one JSON line per repeat with the TTFTs (ms): cold (nothing cached),
memory (the same document, another question, same process) and restart
(a new process with the same --kv_disk_cache_dir, a third question), the
cached prompt tokens of each, and whether the restarted process answers the
cold run's prompt with the same tokens.
"""

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One `hydra serve` process; stopped with SIGTERM (it drains)."""

    def __init__(self, args, stubs, extra):
        import grpc
        self.port = free_port()
        cmd = [args.hydra, "serve", f"--model={args.model}", f"--port={self.port}",
               "--metrics_port=0", f"--kv_disk_cache_dir={args.disk_dir}"] + extra
        self.proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        self.stub = stubs.grpc.InferenceStub(
            grpc.insecure_channel(f"127.0.0.1:{self.port}"))
        give_up = time.monotonic() + 600
        while time.monotonic() < give_up:
            try:
                self.stub.GetModelInfo(stubs.pb.GetModelInfoRequest(), timeout=1)
                return
            except grpc.RpcError:
                if self.proc.poll() is not None:
                    sys.exit(f"hydra serve exited {self.proc.returncode}")
                time.sleep(0.2)
        sys.exit("hydra serve never became ready")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)


def ask(server, stubs, ids, answer_tokens):
    """Streams one greedy answer: (TTFT ms, tokens, cached prompt tokens)."""
    r = stubs.pb.GenerateRequest(prompt_token_ids=stubs.pb.TokenIds(ids=ids))
    r.sampling.temperature = 0
    r.stopping.max_tokens = answer_tokens
    r.stopping.ignore_eos = True
    start = time.monotonic()
    ttft, tokens, cached = None, [], 0
    for msg in server.stub.GenerateStream(r, timeout=600):
        if msg.token_ids and ttft is None:
            ttft = (time.monotonic() - start) * 1e3
        tokens.extend(msg.token_ids)
        if msg.HasField("usage"):
            cached = msg.usage.cached_prompt_tokens
    return ttft, tokens, cached


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hydra", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--doc_len", type=int, default=1500)
    parser.add_argument("--question_len", type=int, default=24)
    parser.add_argument("--answer_tokens", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--disk_dir", default="/tmp/hydra_rag_tier")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--drop_caches", action="store_true",
                        help="before the restart, drop the page cache (root): "
                             "the blocks come from the device, not memory")
    args, extra = parser.parse_known_args()
    extra = [e for e in extra if e != "--"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:0] = [os.path.join(root, "examples", "python")]
    from client import load_stubs
    stubs = load_stubs(os.path.join("/tmp", "hydra_rag_stubs"))

    rng = random.Random(16)
    for repeat in range(args.repeats):
        shutil.rmtree(args.disk_dir, ignore_errors=True)
        doc = [1] + [rng.randrange(3, args.vocab) for _ in range(args.doc_len - 1)]
        questions = [[rng.randrange(3, args.vocab) for _ in range(args.question_len)]
                     for _ in range(3)]
        server = Server(args, stubs, extra)
        cold = ask(server, stubs, doc + questions[0], args.answer_tokens)
        memory = ask(server, stubs, doc + questions[1], args.answer_tokens)
        server.stop()
        if args.drop_caches:
            subprocess.run(["sync"], check=True)
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("3\n")
        server = Server(args, stubs, extra)
        # A new question over the document first (what a RAG request after a
        # restart looks like), then the cold run's prompt, to compare answers.
        restart = ask(server, stubs, doc + questions[2], args.answer_tokens)
        again = ask(server, stubs, doc + questions[0], args.answer_tokens)
        server.stop()
        print(json.dumps({
            "repeat": repeat, "doc_len": args.doc_len,
            "ttft_cold_ms": round(cold[0], 1),
            "ttft_memory_ms": round(memory[0], 1),
            "ttft_restart_disk_ms": round(restart[0], 1),
            "restart_over_cold": round(restart[0] / cold[0], 3),
            "cached_tokens": {"cold": cold[2], "memory": memory[2],
                              "restart": restart[2]},
            "restart_answer_matches_cold": again[1] == cold[1],
        }), flush=True)
    shutil.rmtree(args.disk_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
