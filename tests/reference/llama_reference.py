#!/usr/bin/python3
"""An independent fp32 forward pass of the Llama / Qwen2 decoder in NumPy.

Written from the Hugging Face modelling equations (LlamaForCausalLM,
Qwen2ForCausalLM), not from hydra's C++, so that the two can check each
other: RMSNorm, rotate-half rotary embeddings (default, linear or llama3
frequency scaling), grouped-query causal attention with optional q/k/v
biases, the SiLU-gated MLP, the final norm and the (optionally tied)
classifier. It reads a Hugging Face model folder directly: config.json and
model.safetensors (or shards through model.safetensors.index.json), the
safetensors files parsed by hand. BF16 and F16 tensors are widened to fp32
exactly, so a BF16 checkpoint is computed on the very values hydra loads.

There is no KV cache: every call runs the whole sequence, so positions and
causality come from the equations alone.

  /usr/bin/python3 tests/reference/llama_reference.py --model=DIR \\
      --ids=1,2,3 [--stats]

prints the greedy next token of each position (and with --stats the scales
bench/synthetic_weights.cc is tuned for).
"""

import argparse
import json
import math
import os
import sys

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}


def read_safetensors(path):
    """Returns {name: fp32 array} of one .safetensors file."""
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + header_len)
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[begin:end].view(_DTYPES[entry["dtype"]])
        if entry["dtype"] == "BF16":
            # A bfloat16 is the high half of the float32 with the same value.
            values = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            values = raw.astype(np.float32)
        tensors[name] = values.reshape(entry["shape"])
    return tensors


def read_checkpoint(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if not os.path.exists(index):
        return read_safetensors(os.path.join(model_dir, "model.safetensors"))
    with open(index) as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
    tensors = {}
    for shard in shards:
        tensors.update(read_safetensors(os.path.join(model_dir, shard)))
    return tensors


def inverse_frequencies(config, head_dim):
    """RoPE inverse frequencies, after the config's rope_scaling."""
    theta = float(config.get("rope_theta", 10000.0))
    inv_freq = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    scaling = config.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        # Positions divided by the factor, i.e. every frequency is.
        return inv_freq / scaling["factor"]
    if kind == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        original = scaling["original_max_position_embeddings"]
        wavelength = 2 * math.pi / inv_freq
        # Long wavelengths (low frequencies) are stretched by the factor,
        # short ones kept, and the band between interpolated.
        stretched = np.where(wavelength > original / low, inv_freq / factor, inv_freq)
        smooth = (original / wavelength - low) / (high - low)
        blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq
        band = (wavelength >= original / high) & (wavelength <= original / low)
        return np.where(band, blended, stretched)
    raise ValueError(f"rope_scaling type {kind!r} is not implemented")


def rms_norm(x, weight, eps):
    variance = np.mean(x * x, axis=-1, keepdims=True)
    return (x / np.sqrt(variance + eps)) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


class Model:
    def __init__(self, model_dir, dtype=np.float32):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.config = json.load(f)
        c = self.config
        self.dtype = dtype
        self.hidden = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads", self.heads)
        self.head_dim = c.get("head_dim") or self.hidden // self.heads
        self.layers = c["num_hidden_layers"]
        self.eps = float(c.get("rms_norm_eps", 1e-6))
        self.weights = {k: v.astype(dtype, copy=False) for k, v in read_checkpoint(model_dir).items()}
        self.embed = self.weights["model.embed_tokens.weight"]
        # Tied models may ship no lm_head.weight; when one is there it wins.
        self.lm_head = self.weights.get("lm_head.weight", self.embed)
        if not c.get("tie_word_embeddings", False) and "lm_head.weight" not in self.weights:
            raise ValueError("untied model without lm_head.weight")
        self.inv_freq = inverse_frequencies(c, self.head_dim)

    def w(self, name):
        return self.weights[name]

    def linear(self, x, name, bias=False):
        y = x @ self.w(name + ".weight").T
        if bias and (name + ".bias") in self.weights:
            y = y + self.w(name + ".bias")
        return y

    def attention(self, x, layer, stats):
        p = f"model.layers.{layer}.self_attn."
        t = x.shape[0]
        q = self.linear(x, p + "q_proj", bias=True).reshape(t, self.heads, self.head_dim)
        k = self.linear(x, p + "k_proj", bias=True).reshape(t, self.kv_heads, self.head_dim)
        v = self.linear(x, p + "v_proj", bias=True).reshape(t, self.kv_heads, self.head_dim)
        angles = np.outer(np.arange(t, dtype=np.float64), self.inv_freq)
        angles = np.concatenate([angles, angles], axis=-1)
        cos = np.cos(angles).astype(self.dtype)[:, None, :]
        sin = np.sin(angles).astype(self.dtype)[:, None, :]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # Grouped-query attention: query head h reads KV head h // group.
        group = self.heads // self.kv_heads
        k = np.repeat(k, group, axis=1)
        v = np.repeat(v, group, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(self.dtype(self.head_dim))
        causal = np.triu(np.ones((t, t), dtype=bool), 1)
        scores = np.where(causal[None], -np.inf, scores)
        if stats is not None:
            stats.attention(scores)
        out = np.einsum("hqk,khd->qhd", softmax(scores), v).reshape(t, -1)
        return self.linear(out, p + "o_proj")

    def mlp(self, x, layer):
        p = f"model.layers.{layer}.mlp."
        return self.linear(silu(self.linear(x, p + "gate_proj")) * self.linear(x, p + "up_proj"), p + "down_proj")

    def forward(self, ids, rows=None, stats=None):
        """Logits [len(rows), vocab] at positions `rows` (default: all)."""
        x = self.embed[np.asarray(ids)]
        for layer in range(self.layers):
            p = f"model.layers.{layer}."
            x = x + self.attention(rms_norm(x, self.w(p + "input_layernorm.weight"), self.eps), layer, stats)
            x = x + self.mlp(rms_norm(x, self.w(p + "post_attention_layernorm.weight"), self.eps), layer)
        if rows is not None:
            x = x[np.asarray(rows)]
        if stats is not None:
            stats.residual_rms = float(np.sqrt(np.mean(x * x)))
        return rms_norm(x, self.w("model.norm.weight"), self.eps) @ self.lm_head.T


class Stats:
    """The scales the synthetic weights are tuned for, over one forward."""

    def __init__(self):
        self.score_std = []
        self.score_spread = []
        self.residual_rms = None

    def attention(self, scores):
        t = scores.shape[-1]
        for qpos in range(1, t):  # rows with at least two keys
            row = scores[:, qpos, : qpos + 1]
            self.score_std.extend(np.std(row, axis=-1))
            self.score_spread.extend(np.max(row, axis=-1) - np.min(row, axis=-1))

    def report(self, logits):
        top2 = np.sort(logits, axis=-1)[:, -2:]
        return {
            "attention_score_std": float(np.mean(self.score_std)),
            "attention_score_spread": float(np.mean(self.score_spread)),
            "final_residual_rms": self.residual_rms,
            "logit_std": float(np.mean(np.std(logits, axis=-1))),
            "logit_max": float(np.mean(top2[:, 1])),
            "top1_top2_gap_mean": float(np.mean(top2[:, 1] - top2[:, 0])),
            "top1_top2_gap_min": float(np.min(top2[:, 1] - top2[:, 0])),
        }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--ids", required=True, help="comma-separated token ids")
    parser.add_argument("--greedy", type=int, default=0, help="greedy tokens to append first")
    parser.add_argument("--stats", action="store_true")
    args = parser.parse_args()
    model = Model(args.model)
    ids = [int(i) for i in args.ids.split(",") if i]
    for _ in range(args.greedy):
        ids.append(int(np.argmax(model.forward(ids, rows=[len(ids) - 1])[0])))
    stats = Stats() if args.stats else None
    logits = model.forward(ids, stats=stats)
    print(json.dumps({"ids": ids, "next": [int(i) for i in np.argmax(logits, axis=-1)]}))
    if stats is not None:
        print(json.dumps(stats.report(logits), indent=1))


if __name__ == "__main__":
    sys.exit(main())
