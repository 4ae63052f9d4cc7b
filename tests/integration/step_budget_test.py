#!/usr/bin/python3
"""The step-time budget against a real server: four streams decode, a
1,500-token prompt arrives, and the streams' largest gap between tokens
while it is prefilled stays within --max_step_ms plus a tolerance. Without
the budget the same scenario stalls them for the whole prefill (checked, so
that the scenario is known to exercise the budget). Every output, loaded or
not, is token-identical to the same request run alone (greedy).

The model is a synthetic Llama (hydra_make_synthetic_model: 6 layers, 768
wide, random BF16 weights, context 2048, the stories15M tokenizer), big
enough that the long prefill takes a second or more on a small CPU.

Usage: step_budget_test.py HYDRA SYNTHETIC_TOOL WORK_DIR TOKENIZER_MODEL
Exit status 77 means skipped (no tokenizer: run scripts/setup.sh).
"""

import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "integration"),
                os.path.join(ROOT, "examples", "python"), os.path.join(ROOT, "bench")]
from client import load_stubs  # noqa: E402
from hydra_server import Server, check, fail  # noqa: E402
from long_prompt_stall import greedy, prompts, run_scenario  # noqa: E402

MODEL_FLAGS = ["--preset=llama-tiny", "--dtype=bf16", "--hidden=768", "--layers=6",
               "--heads=12", "--kv_heads=4", "--intermediate=2048", "--vocab=32000",
               "--max_positions=2048"]
BUDGET_MS = 80
# Scheduling jitter, a mispredicted step and the client's own delivery on a
# busy 2-core machine; still far below the unbudgeted stall.
TOLERANCE_MS = 170
STREAMS = 4
STREAM_TOKENS = 160
LONG_PROMPT = 1500
LONG_TOKENS = 4


def make_model(tool, work, tokenizer):
    path = os.path.join(work, "llama-768x6")
    stamp = os.path.join(path, ".step_budget_test_stamp")
    want = " ".join(MODEL_FLAGS)
    if not (os.path.exists(stamp) and open(stamp).read() == want):
        subprocess.run([tool, "--out=" + path, "--tokenizer=" + tokenizer] + MODEL_FLAGS,
                       check=True, stdout=subprocess.DEVNULL)
        with open(stamp, "w") as f:
            f.write(want)
    return path


def scenario(stub, stubs):
    """Returns (stream outputs, long output, the streams' largest gap during
    the prefill in ms, the long prompt's time to first token in ms)."""
    short, long_prompt = prompts(STREAMS, LONG_PROMPT, 32000)
    try:
        r = run_scenario(stub, stubs, short, long_prompt, STREAM_TOKENS, LONG_TOKENS)
    except RuntimeError as e:
        fail(str(e))
    return r.stream_tokens, r.long_tokens, max(r.gaps_during_ms), r.ttft_ms


def alone(stub, stubs):
    stream_prompts, long_prompt = prompts(STREAMS, LONG_PROMPT, 32000)
    outs = [list(stub.Generate(greedy(stubs, p, STREAM_TOKENS), timeout=300).token_ids)
            for p in stream_prompts]
    return outs, list(stub.Generate(greedy(stubs, long_prompt, LONG_TOKENS),
                                    timeout=300).token_ids)


def run_server(hydra, path, stubs, *flags):
    # No prefix cache: the runs alone would otherwise serve the scenario's
    # long prompt from cached blocks.
    server = Server(hydra, path, "--max_model_len=2048", "--kv_cache_bytes=268435456",
                    "--prefix_cache=false", *flags)
    server.wait_serving(stubs)
    stub = stubs.grpc.InferenceStub(server.channel)
    # Warm up: the first steps touch fresh KV pages and teach the cost model.
    stub.Generate(greedy(stubs, prompts(STREAMS, LONG_PROMPT, 32000)[1][:600], 2), timeout=300)
    return server, stub


def main():
    hydra, tool, work, tokenizer = sys.argv[1:5]
    if not os.path.exists(tokenizer):
        print("SKIP: no %s (scripts/setup.sh fetches it)" % tokenizer)
        return 77
    os.makedirs(work, exist_ok=True)
    stubs = load_stubs(os.path.join(work, "stubs"))
    path = make_model(tool, work, tokenizer)

    server, stub = run_server(hydra, path, stubs, "--max_step_ms=%d" % BUDGET_MS)
    want_streams, want_long = alone(stub, stubs)
    got_streams, got_long, gap_ms, ttft_ms = scenario(stub, stubs)
    metrics = server.output()
    server.stop()
    print("with --max_step_ms=%d: largest stream gap %.0f ms, long prompt TTFT %.0f ms"
          % (BUDGET_MS, gap_ms, ttft_ms))
    for i, (got, want) in enumerate(zip(got_streams, want_streams)):
        check(got == want, "stream %d differs from its run alone:\n%s\n%s" % (i, got, want))
    check(got_long == want_long, "the long prompt's output differs from its run alone")
    check(gap_ms <= BUDGET_MS + TOLERANCE_MS,
          "a stream waited %.0f ms between tokens; budget %d ms + %d ms tolerance\n%s"
          % (gap_ms, BUDGET_MS, TOLERANCE_MS, metrics))

    server, stub = run_server(hydra, path, stubs)
    got_streams, got_long, stall_ms, plain_ttft_ms = scenario(stub, stubs)
    server.stop()
    print("without a budget: largest stream gap %.0f ms, long prompt TTFT %.0f ms"
          % (stall_ms, plain_ttft_ms))
    check(got_streams == want_streams and got_long == want_long,
          "outputs without a budget differ from the runs alone")
    check(stall_ms > 2 * (BUDGET_MS + TOLERANCE_MS),
          "without a budget the streams waited only %.0f ms: the scenario does not "
          "exercise the budget on this machine" % stall_ms)
    print("ok: the budget holds the gap to %.2fx of the unbudgeted stall; TTFT %.2fx"
          % (gap_ms / stall_ms, ttft_ms / plain_ttft_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
