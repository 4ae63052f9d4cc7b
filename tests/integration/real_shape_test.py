#!/usr/bin/python3
"""Real-shaped checkpoints with default flags: `hydra generate` and
`hydra serve` start and answer, in the formats and context the defaults
choose, within the memory bound, and bad formats or caps are refused.

The checkpoints are the real models' published configs cut to fewer layers
(hydra_make_synthetic_model): Llama-3.2-1B at its full width (2048, 32 query
heads over 8 KV heads, llama3 rope, tied 128256-word vocabulary) and
Qwen2.5-0.5B (896 wide, q/k/v biases, tied 151936-word vocabulary), both
BF16 with their real tokenizers.

Usage: real_shape_test.py HYDRA SYNTHETIC_TOOL WORK_DIR TOKENIZERS_DIR
Exit status 77 means skipped (a tokenizer missing: run scripts/setup.sh).
"""

import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "tests", "integration"),
                os.path.join(ROOT, "examples", "python")]
from client import load_stubs  # noqa: E402
from hydra_server import Server, check, fail  # noqa: E402

MODELS = {
    # name: (synthetic tool flags, tokenizer, model context)
    "llama3.2-1b-4l": (["--preset=llama3.2-1b", "--layers=4"],
                       "llama3_1/tokenizer.json", 131072),
    "qwen2.5-0.5b-2l": (["--preset=qwen2.5-0.5b", "--layers=2"],
                        "qwen3/tokenizer.json", 32768),
}
# serve's default --kv_cache_bytes; generate's default --kv_cache_mb.
SERVE_KV_BYTES = 512 << 20


def make_model(tool, work, name, tokenizers):
    flags, tokenizer, _ = MODELS[name]
    path = os.path.join(work, name)
    stamp = os.path.join(path, ".real_shape_test_stamp")
    want = " ".join(flags)
    if os.path.exists(stamp) and open(stamp).read() == want:
        return path
    subprocess.run([tool, "--out=" + path, "--tokenizer=" + os.path.join(tokenizers, tokenizer)]
                   + flags, check=True, stdout=subprocess.DEVNULL)
    with open(stamp, "w") as f:
        f.write(want)
    return path


def kv_bytes_per_token(path):
    import json
    c = json.load(open(os.path.join(path, "config.json")))
    head_dim = c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])
    # K and V, bf16 (the default for a BF16 checkpoint).
    return 2 * c["num_hidden_layers"] * c["num_key_value_heads"] * head_dim * 2


def generate_with_default_flags(hydra, path):
    """Runs `hydra generate`; returns its stderr."""
    proc = subprocess.Popen([hydra, "generate", "--model=" + path, "--prompt=Hello there",
                             "--max_tokens=8", "--temperature=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=300)
    check(proc.returncode == 0, "%s: generate exited %d: %s" % (path, proc.returncode, err.decode()))
    return err.decode()


def peak_rss_of_generate(hydra, path):
    """Peak RSS of one `hydra generate`, from wait4 (RUSAGE_CHILDREN would be
    the largest over every child so far)."""
    proc = subprocess.Popen([hydra, "generate", "--model=" + path, "--prompt=Hello there",
                             "--max_tokens=8", "--temperature=0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    check(os.waitstatus_to_exitcode(status) == 0, "generate for the RSS check failed")
    return usage.ru_maxrss * 1024


def serve_and_ask(hydra, stubs, path, context, expect_weights, *flags):
    server = Server(hydra, path, *flags)
    server.wait_serving(stubs)
    stub = stubs.grpc.InferenceStub(server.channel)
    info = stub.GetModelInfo(stubs.pb.GetModelInfoRequest(), timeout=10)
    check(info.weight_dtype == expect_weights,
          "%s: weight_dtype %r, want %r" % (path, info.weight_dtype, expect_weights))
    check(info.kv_cache_dtype == "bf16", "%s: kv_cache_dtype %r" % (path, info.kv_cache_dtype))
    # The default cap: the model's context if the pool holds it, else the
    # pool's capacity (a block multiple), said in the log.
    capacity = SERVE_KV_BYTES // kv_bytes_per_token(path) // 16 * 16
    want = min(context, capacity)
    check(info.max_context == want,
          "%s: max_context %d, want %d (context %d, pool %d tokens)"
          % (path, info.max_context, want, context, capacity))
    if want < context:
        check("max_model_len %d" % want in server.output(), "no log line for the shortened context")
    request = stubs.pb.GenerateRequest(prompt=b"Hello there")
    request.sampling.temperature = 0
    request.stopping.max_tokens = 4
    request.stopping.ignore_eos = True
    response = stub.Generate(request, timeout=60)
    check(len(response.token_ids) == 4, "%s: %d tokens" % (path, len(response.token_ids)))
    check("loaded in" in server.output() and "weights " + expect_weights in server.output(),
          "no start-up line with the load time and formats:\n" + server.output())
    server.stop()
    print("ok: serve %s %s: max_context %d, weights %s" % (os.path.basename(path), " ".join(flags),
                                                           info.max_context, info.weight_dtype))


def refused(hydra, path, flags, *needles):
    proc = subprocess.run([hydra, "generate", "--model=" + path, "--max_tokens=1"] + flags,
                          capture_output=True, text=True, timeout=300)
    check(proc.returncode != 0, "%s was accepted" % flags)
    for needle in needles:
        check(needle in proc.stderr, "%s: %r not in the error: %s" % (flags, needle, proc.stderr))
    print("ok: refused %s" % " ".join(flags))


def main():
    hydra, tool, work, tokenizers = sys.argv[1:5]
    for _, tokenizer, _ in MODELS.values():
        if not os.path.exists(os.path.join(tokenizers, tokenizer)):
            print("SKIP: no %s (scripts/setup.sh fetches it)" % tokenizer)
            return 77
    os.makedirs(work, exist_ok=True)
    stubs = load_stubs(os.path.join(work, "stubs"))
    paths = {name: make_model(tool, work, name, tokenizers) for name in MODELS}

    for name, path in paths.items():
        err = generate_with_default_flags(hydra, path)
        check("weights bf16" in err and "KV bf16" in err, "%s: formats not as the defaults: %s" % (name, err))
        print("ok: generate %s" % name)

    # Peak memory of a real-width model: the packed weights (the BF16 file's
    # size) plus at most 0.3 of it for everything else, plus the KV written.
    llama = paths["llama3.2-1b-4l"]
    file_bytes = os.path.getsize(os.path.join(llama, "model.safetensors"))
    peak = peak_rss_of_generate(hydra, llama)
    kv_written = kv_bytes_per_token(llama) * 16
    bound = 1.3 * file_bytes + kv_written
    print("peak RSS %.0f MB for a %.0f MB checkpoint (%.2fx; bound %.0f MB)"
          % (peak / 1e6, file_bytes / 1e6, peak / file_bytes, bound / 1e6))
    check(peak <= bound, "peak RSS %d exceeds 1.3 x the file + KV written = %d" % (peak, bound))

    for name, path in paths.items():
        serve_and_ask(hydra, stubs, path, MODELS[name][2], "bf16")
    serve_and_ask(hydra, stubs, paths["qwen2.5-0.5b-2l"], 32768, "int8", "--weight_dtype=int8")

    qwen = paths["qwen2.5-0.5b-2l"]
    refused(hydra, qwen, ["--max_model_len=40000"], "--max_model_len", "40000", "32768")
    refused(hydra, llama, ["--max_model_len=131072", "--kv_cache_mb=64"], "--max_model_len", "131072")
    refused(hydra, qwen, ["--weight_dtype=fp8"], "--weight_dtype", "'fp8'", "int8")
    refused(hydra, qwen, ["--kv_cache_dtype=bf8"], "--kv_cache_dtype", "'bf8'")
    print("real-shape test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
