#!/usr/bin/python3
"""The long-prompt stall: N streams decode, one long prompt arrives. Measures
the streams' inter-token gaps while it is prefilled and its time to first
token, against a running `hydra serve`. Used by the benchmark (main, below)
and by tests/integration/step_budget_test.py.

Usage: long_prompt_stall.py --target=HOST:PORT [--streams=4] [--prompt_len=1500]
           [--stream_tokens=200] [--vocab=32000] [--repeats=1]
Prints one JSON line per repeat: median and largest gap (ms) of the streams
during the prefill, their median gap outside it, and the long prompt's TTFT.
"""

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time


class Stream(threading.Thread):
    """One GenerateStream call; records each token with its arrival time."""

    def __init__(self, stub, req):
        super().__init__(daemon=True)
        self.stub, self.req = stub, req
        self.tokens, self.times = [], []
        self.error = None

    def run(self):
        try:
            for msg in self.stub.GenerateStream(self.req, timeout=600):
                now = time.monotonic()
                for t in msg.token_ids:
                    self.tokens.append(t)
                    self.times.append(now)
        except Exception as e:  # reported by the caller
            self.error = e


def greedy(stubs, ids, max_tokens):
    r = stubs.pb.GenerateRequest(prompt_token_ids=stubs.pb.TokenIds(ids=ids))
    r.sampling.temperature = 0
    r.stopping.max_tokens = max_tokens
    r.stopping.ignore_eos = True
    return r


def prompts(streams, prompt_len, vocab, seed=13):
    """Stream prompts of 25 tokens and one long prompt, random ids after BOS
    (id 1 for Llama; harmless for other vocabularies)."""
    rng = random.Random(seed)
    short = [[1] + [rng.randrange(3, vocab) for _ in range(24)] for _ in range(streams)]
    long_prompt = [1] + [rng.randrange(3, vocab) for _ in range(prompt_len - 1)]
    return short, long_prompt


class Result:
    def __init__(self, stream_tokens, long_tokens, gaps_during, gaps_outside, ttft):
        self.stream_tokens = stream_tokens  # per stream
        self.long_tokens = long_tokens
        self.gaps_during_ms = gaps_during  # stream gaps overlapping the prefill
        self.gaps_outside_ms = gaps_outside
        self.ttft_ms = ttft

    def summary(self):
        return {"max_gap_ms": round(max(self.gaps_during_ms), 1),
                "median_gap_during_ms": round(statistics.median(self.gaps_during_ms), 1),
                "median_gap_outside_ms": round(statistics.median(self.gaps_outside_ms), 1),
                "ttft_ms": round(self.ttft_ms, 1)}


def run_scenario(stub, stubs, short, long_prompt, stream_tokens, long_tokens=4):
    """Starts the streams, waits until each has 8 tokens, sends the long
    prompt; returns a Result or raises RuntimeError."""
    streams = [Stream(stub, greedy(stubs, p, stream_tokens)) for p in short]
    for s in streams:
        s.start()
    deadline = time.monotonic() + 300
    while min(len(s.tokens) for s in streams) < 8:
        if time.monotonic() > deadline or any(s.error for s in streams):
            raise RuntimeError("the streams did not start: %s" % [s.error for s in streams])
        time.sleep(0.01)
    long_call = Stream(stub, greedy(stubs, long_prompt, long_tokens))
    sent = time.monotonic()
    long_call.start()
    long_call.join(600)
    for s in streams:
        s.join(600)
    for s in streams + [long_call]:
        if s.error is not None:
            raise RuntimeError("a call failed: %s" % s.error)
    first = long_call.times[0]
    if not all(s.times[-1] > first for s in streams):
        raise RuntimeError("a stream ended before the long prompt's first token; "
                           "give the streams more tokens")
    during, outside = [], []
    for s in streams:
        for a, b in zip(s.times, s.times[1:]):
            (during if b >= sent and a <= first else outside).append((b - a) * 1e3)
    return Result([s.tokens for s in streams], long_call.tokens, during, outside,
                  (first - sent) * 1e3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--prompt_len", type=int, default=1500)
    parser.add_argument("--stream_tokens", type=int, default=200)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    sys.path[:0] = [os.path.join(root, "examples", "python")]
    import grpc
    from client import load_stubs
    stubs = load_stubs(os.path.join("/tmp", "hydra_stall_stubs"))
    stub = stubs.grpc.InferenceStub(grpc.insecure_channel(args.target))
    for i in range(args.repeats):
        # A new long prompt each time: the prefix cache must not serve it.
        short, long_prompt = prompts(args.streams, args.prompt_len, args.vocab, seed=13 + i)
        print(json.dumps(run_scenario(stub, stubs, short, long_prompt,
                                      args.stream_tokens).summary()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
