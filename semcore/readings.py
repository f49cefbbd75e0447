"""What each result of the notebooks says, written from that run's numbers.

Why: a reader of an executed notebook should not need the README to know what a table or a
figure means, and a hand-written sentence goes stale the first time a setting changes. Each
function takes the table (or rows) a notebook cell just showed and returns a short Markdown
paragraph; `show` displays it under the result. Tables 1–3 have theirs in `semcore.tables`.
"""
from __future__ import annotations

import re
from typing import Any, Iterable

import pandas as pd

def show(text: str) -> None:
    """Display a reading as Markdown under the cell's result (nothing when it is empty)."""
    from IPython.display import Markdown, display

    if text:
        display(Markdown(text))


def _interval(row: Any, metric: str = "R@1") -> str:
    return f"{row[metric]:.1f} [{row[f'{metric} lo']:.1f}, {row[f'{metric} hi']:.1f}]"


def _overlap(a: Any, b: Any) -> bool:
    """Whether two rows' R@1 intervals overlap: then this many queries do not tell them apart."""
    return a["R@1 lo"] <= b["R@1 hi"] and b["R@1 lo"] <= a["R@1 hi"]


def _names(values: Iterable[str]) -> str:
    values = list(values)
    return ", ".join(values) if values else "none"


# --- 01 identifiers ------------------------------------------------------------------------------
def collisions(stats: pd.DataFrame) -> str:
    """Which schemes give several corpus items one identifier, and how long identifiers are."""
    text = []
    for direction, rows in stats.groupby("direction", sort=False):
        shared = rows[rows["colliding_items"] > 0]
        worst = rows.loc[rows["colliding_items"].idxmax()]
        longest, shortest = rows.loc[rows["mean tokens"].idxmax()], rows.loc[rows["mean tokens"].idxmin()]
        text.append(
            f"**{direction.upper()}** ({int(rows['items'].iloc[0])} corpus items): "
            + (f"{len(shared)} of {len(rows)} schemes give some items a shared identifier, most "
               f"{worst['method']} ({int(worst['colliding_items'])} items, groups of up to "
               f"{int(worst['largest_group'])}); the others are unique. " if len(shared) else
               "every scheme gives every item its own identifier. ")
            + f"Mean length runs from {shortest['mean tokens']:.1f} tokens ({shortest['method']}) to "
              f"{longest['mean tokens']:.1f} ({longest['method']}).")
    return " ".join(text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def examples(df: pd.DataFrame) -> str:
    """How much of each scheme's identifier is taken from the item's own source text."""
    sources = [set(_words(t)) for t in df["source text"]]
    shares = {}
    for column in df.columns.drop(["item", "source text"]):
        words = [(w, source) for ident, source in zip(df[column], sources) for w in _words(ident)]
        if words:
            shares[column] = 100 * sum(w in source for w, source in words) / len(words)
    if not shares:
        return ""
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])
    return ("Share of identifier words that occur in the item's source text, over these "
            f"{len(df)} items: " + ", ".join(f"{name} {share:.0f} %" for name, share in ranked)
            + ". Identifiers made of the caption's words are what a text query can be matched "
              "against; codes without such words must be memorised item by item.")


def lengths(stats: pd.DataFrame, cluster_sizes: list[int]) -> str:
    """The length histograms and SID's cluster sizes."""
    words = stats.drop_duplicates("method")
    short, long = words.loc[words["mean words"].idxmin()], words.loc[words["mean words"].idxmax()]
    sizes = sorted(cluster_sizes)
    return (f"Identifiers average {short['mean words']:.1f} words ({short['method']}) to "
            f"{long['mean words']:.1f} ({long['method']}). SID's {len(sizes)} K-Means clusters hold "
            f"{sizes[0]} to {sizes[-1]} items (median {sizes[len(sizes) // 2]}): its global ID "
            "word is shared by that many items, and the lexical ID tells them apart.")


def ceilings(df: pd.DataFrame) -> str:
    """What a perfect generator of each identifier could reach, no model involved."""
    rows = df.set_index("identifier text")
    source = rows.index[-1]
    ids = rows.drop(index=source)
    best = ids["MiniLM R@1"].idxmax()
    text = (f"Ranking the corpus by the identifier text alone (no model), the richest identifier "
            f"is {best} (MiniLM R@1 {ids.loc[best, 'MiniLM R@1']:.1f}, BM25 "
            f"{ids.loc[best, 'BM25 R@1']:.1f}); the {source} gives "
            f"{rows.loc[source, 'MiniLM R@1']:.1f}.")
    sid = [name for name in ids.index if name.startswith("SemCORE")]
    if sid:
        text += (f" SemCORE's SID holds {ids.loc[sid[0], 'MiniLM R@1']:.1f}: notebook 03 compares "
                 "the trained model with this ceiling.")
    return text


# --- 02 training ---------------------------------------------------------------------------------
def training_mix(mix: pd.DataFrame) -> str:
    """How much of an epoch memorises the corpus and how much teaches retrieval."""
    text = []
    for direction in mix.columns:
        counts = mix[direction]
        total = int(counts.sum())
        corpus = int(counts[[k for k in counts.index if "corpus items" in k]].sum())
        text.append(f"{direction.upper()}: {total} examples per epoch, {100 * corpus / total:.0f} % "
                    "of them on corpus items (indexing, memorisation) and the rest on train items.")
    return " ".join(text)


def recipe(validation: pd.DataFrame) -> str:
    """Whether the profile's training setting is the validation split's best or tied with it."""
    rows = validation.set_index("setting")
    ours, best = rows.iloc[0], rows["R@1"].idxmax()
    text = f"On the validation split the profile's setting reaches R@1 {_interval(ours)}"
    if best == rows.index[0]:
        text += ", the best row."
    else:
        text += (f"; the best row is {best} with {_interval(rows.loc[best])}, "
                 + ("within the noise of it (the intervals overlap)." if _overlap(ours, rows.loc[best])
                    else "clearly better: the profile's setting should move there."))
    worse = [name for name, r in rows.iloc[1:].iterrows() if r["R@1 hi"] < ours["R@1 lo"]]
    if worse:
        text += f" Clearly worse: {_names(worse)}."
    return text


def loss_curves(histories: dict[tuple[str, str], list[dict]]) -> str:
    """Final losses, and which models were still learning in their last epoch."""
    final = {key: h[-1]["loss"] for key, h in histories.items() if h}
    if not final:
        return ""
    still = []
    for key, h in histories.items():
        last_epoch = h[-1]["epoch"]
        earlier = [x["loss"] for x in h if last_epoch - 1 <= x["epoch"] < last_epoch - 0.5]
        if earlier and h[-1]["loss"] < 0.8 * earlier[0]:
            still.append(f"{key[1]} ({key[0].upper()})")
    lo, hi = min(final, key=final.get), max(final, key=final.get)
    return (f"Final training losses run from {final[lo]:.3f} ({lo[1]}, {lo[0].upper()}) to "
            f"{final[hi]:.3f} ({hi[1]}, {hi[0].upper()}). "
            + (f"Still falling by over a fifth in the last epoch: {_names(still)}; more epochs "
               "may help them." if still else "Every curve has flattened by its last epoch."))


def diagnostics(diags: dict[tuple[str, str], dict], threshold: float = 90.0) -> str:
    """Which models memorised their corpus and which collapsed onto a few identifiers."""
    label = lambda key: f"{key[1]} ({key[0].upper()})"  # noqa: E731
    collapsed = [label(k) for k, x in diags.items() if x["collapsed"]]
    low = [f"{label(k)} {x['indexing_accuracy']:.0f} %" for k, x in diags.items()
           if x["indexing_accuracy"] < threshold]
    at_uniform = [label(k) for k, x in diags.items()
                  if x["uniform_loss"] and x["final_loss"] >= 0.9 * x["uniform_loss"]]
    text = [f"{len(diags) - len(low)} of {len(diags)} models decode at least {threshold:.0f} % of "
            "their corpus items to their own identifier"
            + (f"; below that: {_names(low)}." if low else ".")]
    text.append(f"Collapsed (under half the possible distinct top-1 identifiers): {_names(collapsed)}."
                + (" Their rows in the tables measure a model that did not learn, not a scheme."
                   if collapsed else ""))
    if at_uniform:
        text.append(f"Final loss within 10 % of a uniform guess: {_names(at_uniform)}.")
    return " ".join(text)


# --- 03 retrieval --------------------------------------------------------------------------------
def before_gsv(rows: pd.DataFrame, chance: dict[str, float]) -> str:
    """The strongest and weakest decoding-only rows per direction, against chance."""
    text = []
    for direction, part in rows.groupby("direction", sort=False):
        best, worst = part.loc[part["R@1"].idxmax()], part.loc[part["R@1"].idxmin()]
        head = f"**{direction.upper()}** (chance {chance[direction]:.2f}): "
        text.append(head + (f"every row at R@1 {_interval(best)}." if best["R@1"] == worst["R@1"] else
                            f"best {best['label']} R@1 {_interval(best)}, weakest {worst['label']} "
                            f"{_interval(worst)}."))
    return " ".join(text)


def ceiling_fraction(df: pd.DataFrame) -> str:
    """How close each trained model comes to its own identifier's ceiling."""
    known = df.dropna(subset=["% of ceiling"])
    if known.empty:
        return ""
    lo, hi = known.loc[known["% of ceiling"].idxmin()], known.loc[known["% of ceiling"].idxmax()]
    text = (f"Trained models reach {lo['% of ceiling']:.0f} % ({lo['method']}) to "
            f"{hi['% of ceiling']:.0f} % ({hi['method']}) of what their identifier text allows.")
    over = known[known["% of ceiling"] > 100]["method"].tolist()
    if over:
        text += (f" Above 100 %: {_names(over)}; the model has learnt more than the identifier's "
                 "words say (the ceiling is a text match, not a bound on a trained model).")
    return text


def beams(rows: pd.DataFrame, x: str = "beam", name: str = "beam") -> str:
    """Whether R@1 moves with the beam size (or another setting x) beyond its interval."""
    text = []
    for direction, part in rows.groupby("direction", sort=False):
        part = part.sort_values(x)
        first, last = part.iloc[0], part.iloc[-1]
        best = part.loc[part["R@1"].idxmax()]
        text.append(f"{direction.upper()}: R@1 {_interval(first)} at {name} {int(first[x])} and "
                    f"{_interval(last)} at {name} {int(last[x])}; "
                    + ("the change lies within the intervals." if _overlap(first, last)
                       else f"the {name} matters (best at {int(best[x])})."))
    return " ".join(text)


def decode_scores(df: pd.DataFrame) -> str:
    """Which identifier score decodes best per direction, against equation 1."""
    text = []
    for direction, part in df.groupby("direction", sort=False):
        rows = part.set_index("decode_score")
        best = rows["R@1"].idxmax()
        text.append(f"{direction.upper()}: sum (eq. 1) R@1 {rows.loc['sum', 'R@1']:.1f}"
                    + (", the best score." if best == "sum" else
                       f"; {best} gives {rows.loc[best, 'R@1']:.1f}."))
    return " ".join(text)


# --- 04 GSV --------------------------------------------------------------------------------------
def gsv_formats(rows: pd.DataFrame) -> str:
    """Which formats raise R@1 beyond the paired interval, per split and direction."""
    text = []
    for (split, direction), part in rows.groupby(["split", "direction"], sort=False):
        up = [f"{r['variant']} {r['R@1 gain']:+.1f}" for _, r in part.iterrows() if r["gain lo"] > 0]
        down = [f"{r['variant']} {r['R@1 gain']:+.1f}" for _, r in part.iterrows() if r["gain hi"] < 0]
        text.append(f"{split}, {direction.upper()}: raises R@1 beyond its paired interval: "
                    f"{_names(up)}; lowers it: {_names(down)}.")
    return " ".join(text)


def positions(rows: pd.DataFrame) -> str:
    """The position checks: whether where the correct candidate was shown changes the outcome,
    shown once in a seeded order (every format) and in every rotation (the format in use)."""
    text = []
    for prefix, what in (("position", "Shown once in a seeded order"),
                         ("rotated", "Shown in every rotation (the format in use, test)")):
        if f"{prefix} positions tested" not in rows:
            continue
        tested = rows[rows[f"{prefix} positions tested"].fillna(0) >= 2]
        if tested.empty:
            text.append(f"{what}: no run had two positions shown to 20 queries or more, so there "
                        "is nothing to test.")
            continue
        biased = [f"{r['variant']} ({r['split']}, {r['direction'].upper()}: up to "
                  f"{r[f'{prefix} max deviation']:.1f} points off, p = {r[f'{prefix} p']:.2f})"
                  for _, r in tested.iterrows() if r[f"{prefix} biased"]]
        text.append(f"{what}: tested in {len(tested)} of {len(rows)} runs; "
                    + (f"top-1 accuracy depends on the position for {_names(biased)}." if biased else
                       "in none does top-1 accuracy leave ±10 points of its mean or fail the "
                       "uniformity test."))
    return " ".join(text)


def cost(df: pd.DataFrame) -> str:
    """GSV's cost per query against decoding's."""
    ratio = df["GSV / decoding"]
    return (f"GSV costs {ratio.min():.1f}× to {ratio.max():.1f}× the decoding time per query "
            f"({df['GSV ms/query'].min():.1f}–{df['GSV ms/query'].max():.1f} ms). Times are wall "
            "clock on this machine and vary between runs.")


def by_k(rows: pd.DataFrame) -> str:
    """Whether verifying more candidates helps."""
    return beams(rows, x="k", name="k")


# --- 05 tables -----------------------------------------------------------------------------------
def backbones(t4: pd.DataFrame) -> str:
    """The best Table 4 row and which rows it is told apart from."""
    best = t4.loc[t4["R@1"].idxmax()]
    apart = [f"{r['backbone']} {r['method']} ({r['R@1']:.1f})" for _, r in t4.iterrows()
             if r["R@1 hi"] < best["R@1 lo"]]
    return (f"Best: {best['backbone']}, {best['method']}, R@1 {_interval(best)}. Below it beyond the "
            f"intervals: {_names(apart)}; the other rows are within the noise of it.")


def seeds(spread: pd.DataFrame) -> str:
    """Whether training seeds move R@1 more or less than the queries' bootstrap does."""
    text = []
    for _, r in spread.iterrows():
        bootstrap_sd = r["bootstrap half-width"] / 1.96  # a 95 % interval's half-width in SDs
        if r["seeds"] < 2:
            text.append(f"{r['method']}: one training seed, so no spread to read.")
            continue
        noisier = "more than" if r["seed SD"] > bootstrap_sd else "less than"
        text.append(f"{r['method']}: R@1 {r['R@1 by seed']} over {int(r['seeds'])} training seeds "
                    f"(mean {r['mean R@1']:.1f}, SD {r['seed SD']:.1f}, range "
                    f"{r['seed range']:.1f} points); training moves it {noisier} the test "
                    f"queries do (bootstrap SD about {bootstrap_sd:.1f}).")
    return " ".join(text)


# --- 06 figures and 07 search ---------------------------------------------------------------------
def grid(df: pd.DataFrame, x: str, curves: str, x_label: str, curve_label: str) -> str:
    """Figure 3: the best cell, and whether the grid's spread exceeds its intervals."""
    best, worst = df.loc[df["R@1"].idxmax()], df.loc[df["R@1"].idxmin()]
    if best["R@1"] == worst["R@1"]:
        return f"Every setting of the grid gives R@1 {_interval(best)}: it separates nothing here."
    return (f"Best: {x_label} {best[x]}, {curve_label} {best[curves]}, R@1 {_interval(best)}; "
            f"weakest: {x_label} {worst[x]}, {curve_label} {worst[curves]}, {_interval(worst)}. "
            + ("Their intervals overlap: this grid does not separate the settings on these "
               "queries." if _overlap(best, worst) else
               "The intervals do not overlap, so the identifier's shape matters here."))


def grid_versus_own(best: Any, own: Any, diff: Any, cells: int, x: str, curves: str,
                    x_label: str, curve_label: str) -> str:
    """Figure 3's best cell against the profile's own setting, by their paired difference
    (a semcore.stats.Difference; None when the profile's setting is the best cell)."""
    setting = f"{x_label} {own[x]}, {curve_label} {own[curves]}, R@1 {_interval(own)}"
    if diff is None:
        return f"The profile's own setting ({setting}) is the best cell."
    return (f"Best cell minus the profile's own setting ({setting}): {diff.diff:+.1f} "
            f"[{diff.lo:+.1f}, {diff.hi:+.1f}] points, paired bootstrap over the same queries; "
            + (f"the interval excludes 0, though the best of {cells} cells picked on these "
               "queries is flattered by them." if diff.significant else
               "within what the choice of queries alone moves, even before allowing for the best "
               f"of {cells} cells being picked on these queries."))


def cases(correct: list[bool], what: str) -> str:
    """The case-study panels: how many show a relevant first-ranked item."""
    return (f"{sum(correct)} of {len(correct)} {what} show an annotated match first. A panel marked "
            "'not annotated' may still be a fair match: the test split annotates one image per "
            "caption (or five captions per image).")


def false_negatives(queries: int, wrong: int, similarities: list[float]) -> str:
    """Figure 6: the wrong first-ranked images closest in meaning to their query."""
    return (f"{wrong} of {queries} test queries have a first-ranked image that is not annotated as "
            f"relevant. Shown are the {len(similarities)} whose first image's source text is closest "
            f"to the query (MiniLM cosine {min(similarities):.2f} to {max(similarities):.2f}): "
            "the strongest candidates for false negatives of the annotation, judged by eye.")


def search(found: list[str], global_ids: list[str]) -> str:
    """The search demo: how many results share the first result's global ID (its cluster)."""
    if not found:
        return "No result."
    same = sum(g == global_ids[0] for g in global_ids)
    return (f"{same} of the {len(found)} results share the first one's global ID "
            f"'{global_ids[0]}' (its K-Means cluster of the corpus).")
