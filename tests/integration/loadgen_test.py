#!/usr/bin/python3
"""hydra-bench against a real `hydra serve` on loopback.

Checks that closed-loop, Poisson, sweep, shared-prefix, mixed-class (--mix)
and SLO-search runs complete; that the JSON summary agrees with the
per-request file (counts, tokens, and percentiles recomputed here with
Python's own statistics module, per run and per request class);
that the TTFT p95 hydra-bench reports agrees with the one Prometheus would
compute from the server's histogram over the same run, within that
histogram's bucket width; and that bad input, an unreachable server and a
server that rejects requests each give a clear message and a non-zero exit.

Usage: loadgen_test.py HYDRA_BINARY HYDRA_BENCH_BINARY MODEL_DIR
Exit status 77 means skipped (no model).
"""

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path[:0] = [os.path.join(ROOT, "tests"), os.path.join(ROOT, "bench")]
from free_ports import free_ports  # noqa: E402
from plot_bench import read_requests  # noqa: E402

API_KEY = "loadgen-test-key"
PLOT_SCRIPT = os.path.join(ROOT, "bench", "plot_bench.py")


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def percentile(samples, p):
    """numpy's linear interpolation, through Python's own implementation."""
    if len(samples) == 1:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[p - 1]


def close(a, b, abs_tol):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=abs_tol)


class Bench:
    def __init__(self, binary, target, work):
        self.binary, self.target, self.work = binary, target, work

    def run(self, name, *flags, target=None, api_key=API_KEY):
        """Runs hydra-bench; returns (exit code, stdout + stderr, summary)."""
        summary_path = os.path.join(self.work, name + ".json")
        args = [self.binary, "--target=" + (target or self.target),
                "--json_out=" + summary_path, "--progress=off",
                "--api_key=" + api_key, *flags]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
        output = proc.stdout + proc.stderr
        print("$ " + " ".join(args[1:]) + "\n" + output)
        summary = None
        if os.path.exists(summary_path):
            with open(summary_path) as f:
                summary = json.load(f)
        return proc.returncode, output, summary


def check_agreement(summary, rows, abs_tol):
    """The summary's figures, recomputed from the per-request rows."""
    for index, run in enumerate(summary["runs"]):
        mine = [r for r in rows if r["run"] == index]
        ok = [r for r in mine if r["status"] == "OK"]
        label = run["label"]
        check(run["issued"] == len(mine), f"{label}: issued {run['issued']} != {len(mine)} rows")
        check(run["completed"] == len(ok), f"{label}: completed != OK rows")
        check(run["failed"] == len(mine) - len(ok), f"{label}: failed != non-OK rows")
        for field in ("input_tokens", "cached_input_tokens", "output_tokens"):
            total = sum(r[field] for r in ok)
            check(run[field] == total, f"{label}: {field} {run[field]} != {total}")
        samples = {
            "ttft_ms": [r["ttft_ms"] for r in ok],
            "e2e_ms": [r["e2e_ms"] for r in ok],
            "itl_ms": [g for r in ok for g in r["itl_ms"]],
            "tpot_ms": [r["tpot_ms"] for r in ok if r["output_tokens"] >= 2],
        }
        for metric, values in samples.items():
            reported = run[metric]
            check(reported["n"] == len(values), f"{label}: {metric} n {reported['n']} != {len(values)}")
            for p in (50, 90, 95, 99):
                want = percentile(values, p)
                got = reported["p%d" % p]
                check(close(got, want, abs_tol),
                      f"{label}: {metric} p{p} {got} != {want} from the rows")
            check(close(reported["mean"], statistics.fmean(values), abs_tol),
                  f"{label}: {metric} mean")
        tokens_per_s = run["output_tokens"] / run["duration_s"]
        check(close(run["output_tokens_per_s"], tokens_per_s, 1e-6), f"{label}: output tokens/s")
        check(close(run["requests_per_s"], len(ok) / run["duration_s"], 1e-6), f"{label}: requests/s")


def scrape_ttft_histogram(metrics_url):
    """{le: cumulative count} of hydra_time_to_first_token_seconds."""
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    buckets = {}
    for line in text.splitlines():
        if line.startswith("hydra_time_to_first_token_seconds_bucket{"):
            le = line.split('le="')[1].split('"')[0]
            buckets[math.inf if le == "+Inf" else float(le)] = float(line.split()[-1])
    check(buckets, "no hydra_time_to_first_token_seconds_bucket in /metrics")
    return buckets


def histogram_quantile(q, buckets):
    """Prometheus's histogram_quantile over cumulative buckets: linear within
    the bucket holding the rank, the lower bound of the first bucket 0.
    Returns (estimate, bucket lower bound, bucket upper bound)."""
    bounds = sorted(buckets)
    total = buckets[math.inf]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper in bounds:
        count = buckets[upper]
        if count >= rank:
            if upper == math.inf:
                return lower, lower, upper
            return lower + (upper - lower) * (rank - below) / (count - below), lower, upper
        lower, below = upper, count
    raise AssertionError("unreachable")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    hydra, bench_binary, model = sys.argv[1:]
    if not os.path.exists(os.path.join(model, "config.json")):
        print("SKIPPED: no model at " + model)
        sys.exit(77)

    work = tempfile.mkdtemp(prefix="loadgen_test.")
    port, metrics_port, dead_port = free_ports(3)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    log = open(os.path.join(work, "server.log"), "w")
    # No HTTP front end: its default port (8000) is not this test's to take.
    helpfull = subprocess.run([hydra, "--helpfull"], capture_output=True, text=True).stdout
    no_http = ["--http_port=0"] if "--http_port" in helpfull else []
    server = subprocess.Popen(
        [hydra, "serve", "--model=" + model, "--host=127.0.0.1", f"--port={port}",
         f"--metrics_port={metrics_port}", "--api_key=" + API_KEY, *no_http],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        bench = Bench(bench_binary, f"127.0.0.1:{port}", work)

        # Closed loop; hydra-bench waits for the model to load.
        closed = os.path.join(work, "closed.jsonl")
        rc, _, summary = bench.run(
            "closed", "--concurrency=4", "--num_requests=16", "--input_len=24",
            "--output_len=12", "--warmup_requests=2", "--connect_timeout=120",
            "--requests_out=" + closed)
        check(rc == 0, f"closed loop exited {rc}")
        run = summary["runs"][0]
        check(run["mode"] == "closed_loop" and run["concurrency"] == 4, "closed loop run fields")
        check(run["completed"] == 16 and run["failed"] == 0, "closed loop: 16 ok, 0 failed")
        rows = read_requests(closed)
        check(all(r["input_tokens"] == 24 for r in rows), "synthetic prompts are exactly --input_len tokens")
        check(all(r["output_tokens"] == 12 and r["finish_reason"] == "length" for r in rows),
              "ignore_eos makes outputs exactly --output_len tokens")
        check(run["cached_input_tokens"] == 0, "distinct prompts share no cached prefix")
        check_agreement(summary, rows, abs_tol=1e-6)

        # Poisson arrivals, no warm-up, so that the server's histogram over
        # the run holds exactly the requests hydra-bench measured.
        before = scrape_ttft_histogram(metrics_url)
        poisson = os.path.join(work, "poisson.csv")
        rc, _, summary = bench.run(
            "poisson", "--request_rate=12", "--arrival=poisson", "--num_requests=24",
            "--input_len=32", "--output_len=10", "--warmup_requests=0",
            "--requests_out=" + poisson)
        check(rc == 0, f"Poisson run exited {rc}")
        run = summary["runs"][0]
        check(run["mode"] == "open_loop" and run["request_rate"] == 12, "open loop run fields")
        check(run["completed"] == 24 and run["failed"] == 0, "Poisson: 24 ok, 0 failed")
        # The CSV holds 4 decimals.
        check_agreement(summary, read_requests(poisson), abs_tol=1e-3)

        after = scrape_ttft_histogram(metrics_url)
        delta = {le: after[le] - before.get(le, 0) for le in after}
        check(delta[math.inf] == 24, f"server observed {delta[math.inf]} TTFTs, want 24")
        estimate, lower, upper = histogram_quantile(0.95, delta)
        client_p95 = run["ttft_ms"]["p95"] / 1e3
        print(f"TTFT p95: hydra-bench {client_p95 * 1e3:.2f} ms, server histogram "
              f"{estimate * 1e3:.2f} ms (bucket {lower * 1e3:g}..{upper * 1e3:g} ms)")
        # The bucket width: of the bucket holding the histogram's estimate, or
        # the client's figure when the client's network time moved it into the
        # next one.
        bounds = [0.0] + sorted(delta)
        client_bucket = next(i for i in range(1, len(bounds)) if client_p95 <= bounds[i])
        width = max(upper - lower, bounds[client_bucket] - bounds[client_bucket - 1])
        check(abs(client_p95 - estimate) <= width,
              f"TTFT p95 {client_p95} s vs histogram's {estimate} s differ by more than "
              f"the bucket width {width} s")

        # A sweep over concurrencies: one run each, and a sweep table.
        sweep = os.path.join(work, "sweep.csv")
        rc, out, summary = bench.run(
            "sweep", "--concurrency=1,3", "--num_requests=6", "--input_len=16",
            "--output_len=6", "--warmup_requests=0", "--requests_out=" + sweep)
        check(rc == 0, f"sweep exited {rc}")
        check([r["concurrency"] for r in summary["runs"]] == [1, 3], "one run per concurrency")
        check("| concurrency | req/s |" in out, "a sweep prints its table")

        # The plots of that sweep.
        plots = os.path.join(work, "plots")
        subprocess.run([sys.executable, PLOT_SCRIPT, "--out=" + plots,
                        os.path.join(work, "sweep.json"), sweep], check=True, timeout=120)
        for name in ("ttft_cdf.png", "itl_cdf.png", "e2e_cdf.png", "sweep.png"):
            with open(os.path.join(plots, name), "rb") as f:
                check(f.read(8) == b"\x89PNG\r\n\x1a\n", name + " is a PNG")

        # A shared prefix is served from the prefix cache after the first.
        shared = os.path.join(work, "shared.jsonl")
        rc, _, summary = bench.run(
            "shared", "--concurrency=1", "--num_requests=6", "--input_len=80",
            "--shared_prefix_len=64", "--output_len=4", "--warmup_requests=0",
            "--requests_out=" + shared)
        check(rc == 0, f"shared-prefix run exited {rc}")
        rows = read_requests(shared)
        check(all(r["input_tokens"] == 80 for r in rows), "shared prefix is part of --input_len")
        check(all(r["cached_input_tokens"] >= 48 for r in rows[1:]),
              "requests after the first reuse the shared prefix's blocks: "
              + str([r["cached_input_tokens"] for r in rows]))
        check_agreement(summary, rows, abs_tol=1e-6)

        # A mix of request classes under Poisson arrivals: long "doc" prompts
        # among short "chat" turns (stories15M's context is 256 tokens).
        mixed = os.path.join(work, "mixed.csv")
        rc, out, summary = bench.run(
            "mixed", "--mix=doc:0.25:120-180:6,chat:0.75:16-32:4", "--request_rate=16",
            "--num_requests=32", "--warmup_requests=0", "--requests_out=" + mixed)
        check(rc == 0, f"mixed run exited {rc}")
        check([c["name"] for c in summary["workload"]["mix"]] == ["doc", "chat"],
              "the summary's workload lists the classes")
        run = summary["runs"][0]
        classes = run["classes"]
        check([c["name"] for c in classes] == ["doc", "chat"], "one entry per class, in --mix order")
        for field in ("issued", "completed", "failed", "input_tokens", "output_tokens"):
            total = sum(c[field] for c in classes)
            check(total == run[field], f"classes' {field} sum to {total}, run has {run[field]}")
        check(all(c["issued"] > 0 for c in classes),
              "both classes drew requests: " + str([c["issued"] for c in classes]))
        check(abs(sum(c["share"] for c in classes) - 1) < 1e-9, "the classes' shares sum to 1")
        check(sum(c["itl_ms"]["n"] for c in classes) == run["itl_ms"]["n"],
              "the classes' ITL samples are the run's")
        for c in classes:
            for metric in ("ttft_ms", "itl_ms", "e2e_ms"):
                figures = c[metric]
                check(figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"],
                      f"class {c['name']}: {metric} percentiles in order")
        check("| class |" in out and "| doc " in out and "| chat " in out,
              "the table has a row per class")
        rows = read_requests(mixed)
        check({r["class"] for r in rows} == {"doc", "chat"}, "every request row names its class")
        lengths = {"doc": (120, 180, 6), "chat": (16, 32, 4)}
        for r in rows:
            lo, hi, out_len = lengths[r["class"]]
            check(lo <= r["input_tokens"] <= hi and r["output_tokens"] == out_len,
                  f"a {r['class']} request has its class's lengths: {r}")
        # Each class's figures, recomputed from its own rows (CSV: 4 decimals).
        for c in classes:
            mine = [dict(r, run=0) for r in rows if r["class"] == c["name"]]
            check_agreement({"runs": [c]}, mine, abs_tol=1e-3)
        # The same seed draws the same classes again.
        again = os.path.join(work, "mixed_again.csv")
        rc, _, _ = bench.run(
            "mixed_again", "--mix=doc:0.25:120-180:6,chat:0.75:16-32:4", "--request_rate=16",
            "--num_requests=32", "--warmup_requests=0", "--requests_out=" + again)
        check(rc == 0, f"second mixed run exited {rc}")
        check([r["class"] for r in read_requests(again)] == [r["class"] for r in rows],
              "the seed fixes each request's class")
        # The per-class plot, two runs side by side.
        plots = os.path.join(work, "mixed_plots")
        subprocess.run([sys.executable, PLOT_SCRIPT, "--out=" + plots, "--name=first",
                        os.path.join(work, "mixed.json"), mixed,
                        os.path.join(work, "mixed_again.json"), again, "second"],
                       check=True, timeout=120)
        with open(os.path.join(plots, "classes.png"), "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "classes.png is a PNG")
        # A malformed mix is refused before any request, naming the flag.
        rc, out, _ = bench.run("bad_mix", "--mix=doc:0:100:8")
        check(rc == 2 and '--mix: class "doc": WEIGHT must be a positive number' in out,
              "a zero weight is refused with the flag named")
        rc, out, _ = bench.run("mix_and_len", "--mix=doc:1:100:8", "--input_len=32")
        check(rc == 2 and "drop --input_len" in out, "--mix refuses --input_len beside it")

        # SLO search over open-loop runs.
        rc, out, summary = bench.run(
            "slo", "--slo_ttft_p95_ms=5000", "--slo_start_rate=2", "--slo_max_rate=4",
            "--num_requests=6", "--input_len=16", "--output_len=6", "--warmup_requests=0")
        check(rc == 0, f"SLO search exited {rc}")
        slo = summary["slo_search"]
        check([p["rate"] for p in slo["probes"]] == [2, 4], f"probes {slo['probes']}")
        check(slo["best_rate"] == 4 and "highest rate meeting p95 TTFT <= 5000 ms" in out,
              "SLO search result")
        check(all(r["slo"]["met"] for r in summary["runs"]), "each probe records its verdict")

        # Bad input: a malformed dataset line, named with its line number.
        dataset = os.path.join(work, "bad.jsonl")
        with open(dataset, "w") as f:
            f.write('{"prompt": "Once upon a time"}\n{"prompt": "The dog", "max_tokens": "8"}\n')
        rc, out, _ = bench.run("bad_dataset", "--dataset=" + dataset)
        check(rc != 0 and dataset + ':2: field "max_tokens" must be an integer' in out,
              "malformed JSONL is named with its line")

        # Nothing listens on dead_port.
        rc, out, _ = bench.run("unreachable", "--connect_timeout=2",
                               target=f"127.0.0.1:{dead_port}")
        check(rc != 0 and f"cannot connect to 127.0.0.1:{dead_port}" in out,
              "an unreachable server is named")

        # The server rejects: a wrong API key, then prompts too long for it.
        rc, out, _ = bench.run("wrong_key", api_key="wrong")
        check(rc != 0 and "UNAUTHENTICATED" in out, "a rejected API key is reported")
        with open(dataset, "w") as f:
            f.write(json.dumps({"prompt": "the dog ran " * 200, "max_tokens": 8}) + "\n")
        rc, out, _ = bench.run("too_long", "--dataset=" + dataset, "--warmup_requests=0",
                               "--num_requests=3")
        check(rc != 0 and "INVALID_ARGUMENT 3" in out and "context" in out,
              "requests the server rejects are counted by status, with its message")

        check(server.poll() is None, "the server is still serving")
        print("PASS")
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


if __name__ == "__main__":
    main()
