#!/usr/bin/python3
"""Plots hydra-bench results with gnuplot (Debian: gnuplot-nox).

Usage: plot_bench.py --out=DIR [--title=TEXT] [--name=NAME]
           SUMMARY.json REQUESTS.(csv|jsonl) [SUMMARY2.json REQUESTS2.csv NAME2 ...]

Writes, into DIR:
  ttft_cdf.png, itl_cdf.png, e2e_cdf.png  latency CDFs, one curve per run
  sweep.png                               when the first summary holds several
                                          runs: output tokens/s, and p95 TTFT
                                          and ITL, against concurrency or rate
  classes.png                             when a summary has request classes
                                          (--mix): p50/p95/p99 of TTFT, ITL and
                                          E2E per class, one bar group per class
                                          and one colour per run, side by side
Further summaries (each with its requests file and a name for the legend)
add their runs' curves to the CDFs and their bars to classes.png, to compare
two configurations (e.g. with and without a prefill budget); --name names
the first in the legends.
Needs only the Python standard library and gnuplot.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile


def read_requests(path):
    """hydra-bench's per-request rows (--requests_out, CSV or JSONL), every
    status, numbers as numbers and inter-token gaps as lists."""
    rows = []
    with open(path) as f:
        if path.endswith(".csv"):
            for row in csv.DictReader(f):
                rows.append({
                    "run": int(row["run"]), "status": row["status"],
                    "input_tokens": int(row["input_tokens"]),
                    "cached_input_tokens": int(row["cached_input_tokens"]),
                    "output_tokens": int(row["output_tokens"]),
                    "ttft_ms": float(row["ttft_ms"]),
                    "tpot_ms": float(row["tpot_ms"]),
                    "e2e_ms": float(row["e2e_ms"]),
                    "itl_ms": [float(x) for x in row["itl_ms"].split()],
                    "class": row.get("class", ""),
                })
        else:
            rows = [json.loads(line) for line in f if line.strip()]
    return rows


def load(summary_path, requests_path):
    with open(summary_path) as f:
        summary = json.load(f)
    return summary, [r for r in read_requests(requests_path) if r["status"] == "OK"]


def run_title(run):
    if run["mode"] == "open_loop":
        return "%g req/s" % run["request_rate"]
    return "concurrency %d" % run["concurrency"]


def write_cdf(path, values):
    values = sorted(values)
    with open(path, "w") as f:
        for i, v in enumerate(values):
            f.write("%g %g\n" % (v, (i + 1) / len(values)))


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def option(name):
    values = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--%s=" % name)]
    return values[-1] if values else None


# Per run, a colour family; within it p50, p95, p99 from light to dark.
PALETTES = (("#9ecae1", "#4292c6", "#08519c"), ("#fdae6b", "#f16913", "#a63603"),
            ("#a1d99b", "#41ab5d", "#006d2c"), ("#bcbddc", "#807dba", "#54278f"))


def class_plot(inputs, data, path, title):
    """gnuplot commands for classes.png, or [] when no run has classes."""
    series = []  # (legend, {class: run's class entry}) per run with classes
    names = []   # every class, in the order the runs list them
    for name, summary, _ in inputs:
        runs = summary["runs"]
        for run in runs:
            if not run.get("classes"):
                continue
            legend = ", ".join(x for x in (name, run_title(run) if len(runs) > 1 else "") if x)
            series.append((legend, {c["name"]: c for c in run["classes"]}))
            names += [c["name"] for c in run["classes"] if c["name"] not in names]
    if not series:
        return []
    script = ["set terminal pngcairo size 900,%d font \"sans,10\"" % (300 * 3),
              "set output " + quote(path), "set style data histograms",
              "set style histogram clustered gap 1", "set style fill solid 0.9 border -1",
              "set boxwidth 0.9", "set key outside right top", "set grid ytics",
              "unset logscale", "set logscale y", "set autoscale", "unset y2tics",
              "unset y2label", "unset xlabel",
              "set multiplot layout 3,1 title " + quote(title), "unset title"]
    for metric, label in (("ttft_ms", "TTFT (ms)"), ("itl_ms", "inter-token latency (ms)"),
                          ("e2e_ms", "end-to-end latency (ms)")):
        dat = os.path.join(data, "classes_%s.dat" % metric)
        with open(dat, "w") as f:
            for cls in names:
                values = []
                for _, by_class in series:
                    entry = by_class.get(cls)
                    for p in ("p50", "p95", "p99"):
                        # No bar where a class had no samples (log scale).
                        ok = entry is not None and entry[metric]["n"] > 0
                        values.append("%g" % entry[metric][p] if ok else "NaN")
                f.write("%s %s\n" % (quote(cls), " ".join(values)))
        plots = []
        for i, (legend, _) in enumerate(series):
            for j, p in enumerate(("p50", "p95", "p99")):
                column = 2 + 3 * i + j
                using = "%d:xtic(1)" % column if column == 2 else "%d" % column
                plots.append("%s using %s lc rgb %s title %s" % (
                    "''" if plots else quote(dat), using,
                    quote(PALETTES[i % len(PALETTES)][j]),
                    quote(p + (", " + legend if legend else ""))))
        script += ["set ylabel " + quote(label), "plot " + ", ".join(plots)]
    return script + ["unset multiplot"]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    out_dir = option("out")
    if out_dir is None or len(args) < 2 or (len(args) - 2) % 3 != 0:
        sys.exit(__doc__)
    if shutil.which("gnuplot") is None:
        sys.exit("plot_bench.py: gnuplot not found (Debian: apt-get install gnuplot-nox)")
    # (name, summary, rows) per input; the first is unnamed.
    inputs = []
    inputs.append((option("name") or "", *load(args[0], args[1])))
    for i in range(2, len(args), 3):
        inputs.append((args[i + 2], *load(args[i], args[i + 1])))
    summary = inputs[0][1]
    runs = summary["runs"]
    title = option("title") or "%s, %s" % (summary["model"]["name"],
                                           summary["workload"]["description"])
    os.makedirs(out_dir, exist_ok=True)
    data = tempfile.mkdtemp(prefix="plot_bench.")
    script = ['set terminal pngcairo size 900,560 font "sans,10"',
              "set grid", "set key bottom right", "set title " + quote(title)]

    for metric, label in (("ttft_ms", "time to first token (ms)"),
                          ("itl_ms", "inter-token latency (ms)"),
                          ("e2e_ms", "end-to-end latency (ms)")):
        curves = []
        for number, (name, input_summary, rows) in enumerate(inputs):
            for index, run in enumerate(input_summary["runs"]):
                mine = [r for r in rows if r["run"] == index]
                values = ([g for r in mine for g in r[metric]] if metric == "itl_ms"
                          else [r[metric] for r in mine])
                if not values:
                    continue
                path = os.path.join(data, "%s_%d_%d.dat" % (metric, number, index))
                write_cdf(path, values)
                legend = run_title(run) + (", " + name if name else "")
                curves.append("%s using 1:2 with steps lw 2 title %s"
                              % (quote(path), quote(legend)))
        if curves:
            script += ["set output " + quote(os.path.join(out_dir, metric[:-3] + "_cdf.png")),
                       "set xlabel " + quote(label), "set ylabel \"fraction of samples\"",
                       "set yrange [0:1]", "set logscale x", "unset y2tics", "unset y2label",
                       "plot " + ", ".join(curves)]

    if len(runs) > 1:
        open_loop = runs[0]["mode"] == "open_loop"
        path = os.path.join(data, "sweep.dat")
        with open(path, "w") as f:
            # In order of x: an SLO search probes rates out of order.
            for run in sorted(runs, key=lambda r: r["request_rate"] if open_loop
                              else r["concurrency"]):
                x = run["request_rate"] if open_loop else run["concurrency"]
                f.write("%g %g %g %g\n" % (x, run["output_tokens_per_s"],
                                           run["ttft_ms"]["p95"], run["itl_ms"]["p95"]))
        script += ["set output " + quote(os.path.join(out_dir, "sweep.png")),
                   "set xlabel " + quote("request rate (req/s)" if open_loop else "concurrency"),
                   "set ylabel \"output tokens/s\"", "set y2label \"p95 latency (ms)\"",
                   "set autoscale y", "set yrange [0:*]", "set logscale x 2",
                   "set logscale y2", "set ytics nomirror", "set y2tics", "set key top left",
                   "plot %s using 1:2 with linespoints lw 2 pt 7 title \"output tokens/s\", "
                   "'' using 1:3 axes x1y2 with linespoints lw 2 pt 5 title \"p95 TTFT (ms)\", "
                   "'' using 1:4 axes x1y2 with linespoints lw 2 pt 9 title \"p95 ITL (ms)\""
                   % quote(path)]

    script += class_plot(inputs, data, os.path.join(out_dir, "classes.png"), title)

    gp = os.path.join(data, "plot.gp")
    with open(gp, "w") as f:
        f.write("\n".join(script) + "\n")
    subprocess.run(["gnuplot", gp], check=True)
    shutil.rmtree(data)
    for name in sorted(os.listdir(out_dir)):
        if name.endswith(".png"):
            print(os.path.join(out_dir, name))


if __name__ == "__main__":
    main()
