# %% [markdown]
# # Decoding cost: what trie-constrained beam search adds, and how it scales
#
# The paper's efficiency argument for generative retrieval is that a query costs a few decoding
# steps whatever the corpus size, and that the constraint to valid identifiers is nearly free.
# This notebook plots what `make bench` measured on this machine; it measures nothing itself.
#
# - `benchmarks/bench_decoding.py` (the `tiny` backbone, synthetic SemCORE-shaped identifiers):
#   constrained / unconstrained time of the same beam search, per-query latency from 1e3 to
#   1e6 identifiers, and exhaustive dense search over as many vectors;
# - `benchmarks/bench_trie.py`: the trie alone, build time, memory and one decoding step's trie
#   work from 1e3 to 1e6 identifiers;
# - `benchmarks/bench_smol_decoding.py` (the real `smol` MLLM, the Flickr8k test SIDs): the same
#   overhead, and the throughput over the 5,000 test captions.
#
# Both beam searches run each prompt once and copy its key/value cache to the beams
# (`semcore.constrained.prompt_cache`); the unconstrained baseline is that same call without the
# trie processor and with the constrained run's step count, so the ratio is the constraint's cost.

# %%
import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from semcore import paths, report

bench = paths.outputs("bench")
figures = bench / "figures"
figures.mkdir(exist_ok=True)
tiny = json.loads((bench / "decoding.json").read_text())
smol_file, trie_file = bench / "smol_decoding.json", bench / "trie.json"
smol = json.loads(smol_file.read_text()) if smol_file.is_file() else None
trie = json.loads(trie_file.read_text()) if trie_file.is_file() else None
print(tiny["setting"])
print(f"load average {tiny['load_average'][0]:.2f} at the start, {tiny['load_average'][1]:.2f} at "
      f"the end (other processes on these cores skew every number)"
      + ("; QUICK RUN: these figures mean nothing" if tiny["quick"] else ""))
for data, file, script in ((smol, smol_file, "bench_smol_decoding.py"), (trie, trie_file, "bench_trie.py")):
    if data is None:
        print(f"no {file.name}: run `python benchmarks/{script}` for its part")

# %% [markdown]
# ## 1. The constraint's overhead (goal: constrained / unconstrained ≤ 1.10)

# %%
overhead = pd.DataFrame(
    [{"backbone": "tiny", **r} for r in tiny["overhead"]]
    + [{"backbone": "smol", **r} for r in (smol["overhead"] if smol else [])])
overhead["constrained ms"] = overhead["t_c"] * 1e3
overhead["unconstrained ms"] = overhead["t_f"] * 1e3
overhead["meets goal"] = overhead["ratio"] <= tiny["goals"]["overhead"]
with report.figure_style():
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    labels = [f"{b}\nbeam {k}" for b, k in zip(overhead["backbone"], overhead["beam"])]
    ax.bar(labels, overhead["ratio"], color="C0")
    ax.axhline(1.0, color="0.3", lw=0.8)
    ax.axhline(tiny["goals"]["overhead"], color="C3", ls="--", lw=0.8,
               label=f"goal {tiny['goals']['overhead']}")
    for x, ratio in enumerate(overhead["ratio"]):
        ax.annotate(f"{ratio:.3f}", (x, ratio), ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0.8, max(1.2, overhead["ratio"].max() + 0.05))
    ax.set_ylabel("constrained / unconstrained time")
    ax.set_title("Cost of the trie constraint (same beam search, same steps)", fontsize=7)
    ax.legend(fontsize=6)
    fig.tight_layout()
    report.save_figure(fig, figures / "decoding_overhead")
plt.show()
overhead[["backbone", "beam", "steps", "constrained ms", "unconstrained ms", "ratio", "meets goal"]]

# %% [markdown]
# ## 2. Corpus size: generative decoding against dense search
# Per-query latency of trie-constrained beam search (tiny) as the trie grows, beside exhaustive
# dense search (one matmul and a top-k) over as many normalised vectors. The star marks where
# the two cross, if they do (a linear extrapolation beyond the measured range is dotted).

# %%
scaling, dense = pd.DataFrame(tiny["scaling"]), pd.DataFrame(tiny["dense"])
cross = tiny["crossover"]
with report.figure_style():
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    ax.plot(scaling["n"], scaling["per_query"] * 1e3, "o-",
            label=f"generative: trie-constrained beam {tiny['scaling_beam']} (tiny)")
    ax.plot(dense["n"], dense["per_query"] * 1e3, "s-",
            label=f"dense: exhaustive {tiny['dense_dim']}-d matmul + top-{tiny['top_k']}")
    if cross is not None:
        ns = scaling["n"].to_numpy(float)
        if tiny["crossover_extrapolated"]:  # both extended linearly through their two largest sizes
            xs = np.geomspace(ns[-1], cross * 1.5, 40)
            for rows, color in ((scaling, "C0"), (dense, "C1")):
                y = rows["per_query"].to_numpy()[-2:] * 1e3
                ax.plot(xs, y[1] + (y[1] - y[0]) / (ns[-1] - ns[-2]) * (xs - ns[-1]), ":", color=color)
        g = scaling["per_query"].to_numpy() * 1e3
        at = np.exp(np.interp(np.log(cross), np.log(ns), np.log(g))) if not tiny["crossover_extrapolated"] \
            else g[-1] + (g[-1] - g[-2]) / (ns[-1] - ns[-2]) * (cross - ns[-1])
        ax.axvline(cross, color="0.5", ls="--", lw=0.8)
        ax.plot([cross], [at], "k*", ms=7,
                label=f"crossover N ~ {cross:.2g}" + (" (extrapolated)" if tiny["crossover_extrapolated"] else ""))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("corpus size N (identifiers / item vectors)")
    ax.set_ylabel(f"per-query latency (ms), batch of {tiny['batch']}")
    ax.set_title(f"Generative vs dense retrieval latency, CPU ({tiny['threads']} threads)", fontsize=7)
    ax.legend(fontsize=6)
    ax.grid(True, which="major", lw=0.4, alpha=0.5)
    fig.tight_layout()
    report.save_figure(fig, figures / "decoding_scaling")
plt.show()
first, last = scaling.iloc[0], scaling.iloc[-1]
print(f"latency at {last['n']:,.0f} / {first['n']:,.0f} identifiers: "
      f"{last['per_query'] / first['per_query']:.3f} (goal <= {tiny['goals']['scaling']}); per step "
      f"{last['per_step'] / first['per_step']:.3f}")
scaling.assign(**{"ms/query": scaling["per_query"] * 1e3, "dense ms/query": dense["per_query"] * 1e3})[
    ["n", "distinct", "tokens", "nodes", "build", "mb", "steps", "ms/query", "dense ms/query"]].rename(
    columns={"build": "trie build s", "mb": "trie MB"})

# %% [markdown]
# ## 3. The trie itself (goal at 1e6 identifiers: built in ≤ 60 s, ≤ 1 GB)
# One decoding step's trie work for 16 × 20 rows: the processor's step from each row's parent
# node, against a full walk from the root (what every step did before) and a dense mask.

# %%
if trie is not None:
    sizes = pd.DataFrame(trie["sizes"])
    with report.figure_style():
        fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 2.6))
        for column, label in (("step_ms", "step from parent + restrict"),
                              ("walk_ms", "full walk + restrict"), ("mask_ms", "full walk + dense mask")):
            left.plot(sizes["n"], sizes[column], "o-", label=label)
        left.set_xscale("log")
        left.set_ylim(bottom=0)
        left.set_xlabel("identifiers")
        left.set_ylabel(f"ms per step ({trie['rows_per_step']} rows)")
        left.legend(fontsize=6)
        right.plot(sizes["n"], sizes["build_s"], "o-", color="C3", label="build s")
        right.set_xscale("log")
        right.set_xlabel("identifiers")
        right.set_ylabel("build s", color="C3")
        twin = right.twinx()
        twin.plot(sizes["n"], sizes["peak_mb"], "s--", color="C4")
        twin.set_ylabel("build peak MB", color="C4")
        fig.suptitle(f"Trie over synthetic identifiers, vocabulary {trie['vocab']:,}", fontsize=7)
        fig.tight_layout()
        report.save_figure(fig, figures / "trie_scaling")
    plt.show()
    display(sizes)

# %% [markdown]
# ## 4. Throughput with the real backbone (smol, Flickr8k test captions)

# %%
if smol is not None:
    tp = smol["throughput"]
    print(f"{smol['setting']}: {tp['queries']:,} queries at beam {tp['beam']}, batch {tp['batch']}, in "
          f"{tp['seconds']:.0f} s = {tp['queries_per_s']:.2f} queries/s "
          f"({1000 * tp['seconds'] / tp['queries']:.0f} ms per query)")
