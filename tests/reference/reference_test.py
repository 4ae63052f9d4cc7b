#!/usr/bin/python3
"""hydra's logits against the independent NumPy forward pass.

For each case: writes a small real-shaped checkpoint with
hydra_make_synthetic_model (once; a stamp records its flags), runs
hydra_dump_logits on a random prompt (one prefill step, then greedy decode
steps through the paged KV cache), runs tests/reference/llama_reference.py
on the same weights and the same tokens, and compares every step's logits.

  reference_test.py --synthetic_tool=BIN --dump_logits=BIN --work_dir=DIR
      [--tokenizers=models/tokenizers]
      [--weight_dtype=int8 --kv_cache_dtype=... --metric=top5_logprob
       --tolerance=0.05 [--model=NAME]]

With no dtype flags it runs CASES; with them, one case per model (or the
one --model) with those flags. Exit 77 (skipped) when NumPy is missing.
"""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
import zlib

try:
    import numpy as np
except ImportError:
    print("SKIP: NumPy is not installed (Debian: python3-numpy)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference  # noqa: E402

# Small checkpoints with the real models' structure: the Qwen2.5 one keeps
# the full width (896, 14 heads over 2 KV heads, q/k/v biases), the Llama 3.2
# one is narrower but keeps grouped-query attention (4 query heads per KV
# head) and llama3 rope scaling; both keep tied embeddings and the real
# vocabulary. The tokenizer is the real one too when setup fetched it.
MODELS = {
    "qwen2.5-0.5b-2l": dict(
        flags=["--preset=qwen2.5-0.5b", "--layers=2", "--dtype=bf16"],
        tokenizer="qwen3/tokenizer.json"),
    "llama3.2-1b-3l": dict(
        flags=["--preset=llama3.2-1b", "--layers=3", "--hidden=512", "--intermediate=1536",
               "--heads=8", "--kv_heads=2", "--dtype=f16"],
        tokenizer="llama3_1/tokenizer.json"),
}


@dataclasses.dataclass(frozen=True)
class Case:
    model: str                 # a key of MODELS
    dump_flags: tuple = ()     # extra hydra_dump_logits flags (dtypes)
    metric: str = "logit"      # a key of METRICS
    tolerance: float = 1e-3    # on the metric's max over all steps
    same_tokens: bool = True   # hydra's greedy tokens must be the reference's
    prompt_len: int = 20
    decode_steps: int = 8


# One line per case, grouped by model (the reference keeps one in memory).
# Exact: weights as stored (BF16/F16 widened to fp32 exactly) and an fp32 KV
# cache, so hydra and the reference compute on identical values and differ
# by fp32 rounding alone (~1e-4 measured). Lossy formats compare the
# log-probabilities of the reference's top 5 tokens, with tolerances about
# twice what was measured (in the comments); greedy tokens may then differ
# where two candidates are close. "auto" is the serving default: BF16 KV
# for a half-precision checkpoint.
FP32_KV = ("--kv_cache_dtype=fp32",)
INT8 = ("--weight_dtype=int8", "--kv_cache_dtype=int8")
CASES = [
    Case("qwen2.5-0.5b-2l", FP32_KV),
    Case("qwen2.5-0.5b-2l", (), "top5_logprob", 0.25, same_tokens=False),    # 0.11
    Case("qwen2.5-0.5b-2l", INT8, "top5_logprob", 1.5, same_tokens=False),   # 0.86
    Case("llama3.2-1b-3l", FP32_KV),
    Case("llama3.2-1b-3l", (), "top5_logprob", 0.25, same_tokens=False),     # 0.12
    Case("llama3.2-1b-3l", INT8, "top5_logprob", 1.5, same_tokens=False),    # 0.70
]


def log_softmax(x):
    x = x.astype(np.float64)
    shifted = x - np.max(x, axis=-1, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def logit_delta(hydra, reference):
    """|Δ| of every logit."""
    return np.abs(hydra.astype(np.float64) - reference)


def top5_logprob_delta(hydra, reference):
    """|Δ log p| of the reference's five most likely tokens per step."""
    top = np.argsort(-reference, axis=-1)[:, :5]
    return np.abs(np.take_along_axis(log_softmax(hydra), top, -1) -
                  np.take_along_axis(log_softmax(reference), top, -1))


METRICS = {"logit": logit_delta, "top5_logprob": top5_logprob_delta}


def run(cmd):
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}")
    return result.stdout


def make_model(name, args):
    """The checkpoint folder of MODELS[name], written unless already current."""
    spec = MODELS[name]
    folder = os.path.join(args.work_dir, name)
    tokenizer = os.path.join(args.tokenizers, spec["tokenizer"])
    flags = spec["flags"] + ["--tokenizer=" + (tokenizer if os.path.exists(tokenizer) else "none")]
    tool = os.stat(args.synthetic_tool)
    stamp = json.dumps({"flags": flags, "tool": [tool.st_size, tool.st_mtime_ns]})
    stamp_path = os.path.join(folder, ".reference_test_stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        return folder
    print(run([args.synthetic_tool, "--out=" + folder] + flags).strip())
    with open(stamp_path, "w") as f:
        f.write(stamp)
    return folder


def check(case, args, models):
    """Runs one case; returns (passed, the log line)."""
    folder = make_model(case.model, args)
    start = time.monotonic()
    if folder not in models:
        models.clear()  # one reference model in memory at a time
        models[folder] = llama_reference.Model(folder)
    model = models[folder]
    load_seconds = time.monotonic() - start
    vocab = model.config["vocab_size"]
    rng = np.random.default_rng(zlib.crc32(case.model.encode()))
    prompt = [int(t) for t in rng.integers(0, vocab, case.prompt_len)]

    start = time.monotonic()
    prefix = os.path.join(args.work_dir, f"{case.model}.hydra")
    run([args.dump_logits, "--model=" + folder, "--prompt_ids=" + ",".join(map(str, prompt)),
         f"--decode_steps={case.decode_steps}", "--out=" + prefix, *case.dump_flags])
    with open(prefix + ".json") as f:
        meta = json.load(f)
    hydra = np.fromfile(prefix + ".f32", dtype=np.float32).reshape(meta["rows"], vocab)
    hydra_seconds = time.monotonic() - start

    # The reference runs the same tokens in one causal pass (teacher
    # forcing with hydra's choices): while the greedy tokens agree this is
    # exactly the reference's own greedy decode, and where a lossy dtype
    # makes them differ, each step is still compared on the same inputs.
    start = time.monotonic()
    ids = prompt + meta["tokens"][:-1]
    reference = model.forward(ids, rows=meta["positions"]).astype(np.float64)
    reference_seconds = time.monotonic() - start + load_seconds

    delta = METRICS[case.metric](hydra, reference)
    hydra_tokens = meta["tokens"]
    reference_tokens = [int(t) for t in np.argmax(reference, axis=-1)]
    tokens_ok = hydra_tokens == reference_tokens or not case.same_tokens
    passed = bool(delta.max() < case.tolerance) and tokens_ok
    line = (f"{'PASS' if passed else 'FAIL'} {case.model} {' '.join(case.dump_flags) or 'auto'}: "
            f"max |Δ{case.metric}| {delta.max():.3g} (tolerance {case.tolerance:g}), "
            f"mean {delta.mean():.3g}, per step max "
            f"{np.array2string(delta.max(axis=-1), precision=2, max_line_width=10**4)}; "
            f"reference logit std {reference.std(axis=-1).mean():.2f}; "
            f"tokens {hydra_tokens}" + ("" if hydra_tokens == reference_tokens else
                                        f" != reference {reference_tokens}") +
            f"; hydra {hydra_seconds:.1f} s, reference {reference_seconds:.1f} s (with loading)")
    return passed, line


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic_tool", required=True)
    parser.add_argument("--dump_logits", required=True)
    parser.add_argument("--work_dir", required=True)
    parser.add_argument("--tokenizers", default="models/tokenizers")
    parser.add_argument("--weight_dtype")
    parser.add_argument("--kv_cache_dtype")
    parser.add_argument("--metric", default="logit", choices=sorted(METRICS))
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("--model", choices=sorted(MODELS))
    args = parser.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)

    cases = CASES
    dtype_flags = tuple(f"--{name}={value}" for name, value in
                        (("weight_dtype", args.weight_dtype), ("kv_cache_dtype", args.kv_cache_dtype))
                        if value)
    if dtype_flags or args.model:
        cases = [Case(m, dtype_flags, args.metric, args.tolerance, same_tokens=not dtype_flags)
                 for m in ([args.model] if args.model else MODELS)]

    start = time.monotonic()
    models = {}
    failed = 0
    for case in cases:
        try:
            passed, line = check(case, args, models)
        except RuntimeError as e:  # a tool failed: say which, go on
            passed, line = False, f"FAIL {case.model} {' '.join(case.dump_flags) or 'auto'}: {e}"
        print(line, flush=True)
        failed += not passed
    print(f"{len(cases) - failed}/{len(cases)} cases passed in {time.monotonic() - start:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
