"""The one interface every identifier scheme implements.

A scheme turns items (their ids, source texts, text embeddings and, where it needs them,
feature vectors) into an IdentifierTable: one identifier string per item, with its global,
lexical and suffix parts kept apart for rendering (Figure 4 colours global and lexical IDs).
Identifiers are plain text made of words and numbers separated by single spaces; the
tokenizer of the backbone decides how they are split into tokens.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field, asdict
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class IdentifierOptions:
    cluster_size: int = 128
    cluster_size_meaning: str = "clusters"  # "clusters": K = cluster_size; else items per cluster
    lexical_length: int = 4
    dedup_top_n: int = 5
    global_id_style: str = "words"  # "words": top c-TF-IDF word(s) of the cluster; "number"
    global_id_words: int = 1
    use_global: bool = True
    dedup: bool = True
    collisions: str = "group"  # "group" or "suffix"
    seed: int = 0


@dataclass(frozen=True)
class IdentifierInputs:
    item_ids: list[str]
    texts: list[str]  # identifier source texts (never query texts)
    text_embeddings: np.ndarray  # (n, d) L2-normalised
    vectors: np.ndarray | None = None  # (n, d') item features for embedding-based schemes


@dataclass
class IdentifierTable:
    scheme: str
    item_ids: list[str]
    identifiers: list[str]  # what is decoded; repeats only where collisions == "group"
    global_parts: list[str]
    lexical_parts: list[str]
    suffixes: list[str]
    info: dict = field(default_factory=dict)  # scheme facts: clusters, c-TF-IDF words, …

    def __post_init__(self) -> None:
        n = len(self.item_ids)
        if not all(len(x) == n for x in (self.identifiers, self.global_parts,
                                          self.lexical_parts, self.suffixes)):
            raise ValueError("IdentifierTable columns differ in length")
        if len(set(self.item_ids)) != n:
            raise ValueError("IdentifierTable has duplicate item ids")
        if any(not s.strip() for s in self.identifiers):
            raise ValueError("IdentifierTable has an empty identifier")

    def groups(self) -> dict[str, list[str]]:
        """identifier → item ids sharing it (a candidate group for GSV)."""
        out: dict[str, list[str]] = defaultdict(list)
        for item, ident in zip(self.item_ids, self.identifiers):
            out[ident].append(item)
        return dict(out)

    def row(self, item_id: str) -> int:
        index = self.__dict__.get("_rows")
        if index is None:
            index = {item: r for r, item in enumerate(self.item_ids)}
            self.__dict__["_rows"] = index
        return index[item_id]

    def of(self, item_id: str) -> str:
        return self.identifiers[self.row(item_id)]

    def lexical(self, item_id: str) -> str:
        """The lexical part shown to GSV (the whole identifier for schemes without one)."""
        r = self.row(item_id)
        return self.lexical_parts[r] or self.identifiers[r]

    def render(self, item_id: str) -> str:
        """Markdown with the global ID in bold, as Figure 4 colours it."""
        r = self.row(item_id)
        parts = [f"**{self.global_parts[r]}**" if self.global_parts[r] else "",
                 self.lexical_parts[r], self.suffixes[r]]
        return " ".join(x for x in parts if x) or self.identifiers[r]

    def subset(self, item_ids: list[str]) -> "IdentifierTable":
        keep = set(item_ids)
        rows = [i for i, it in enumerate(self.item_ids) if it in keep]
        pick = lambda col: [col[i] for i in rows]  # noqa: E731
        return IdentifierTable(self.scheme, pick(self.item_ids), pick(self.identifiers),
                               pick(self.global_parts), pick(self.lexical_parts),
                               pick(self.suffixes), dict(self.info))

    def collision_stats(self) -> dict:
        sizes = [len(v) for v in self.groups().values()]
        return {"items": len(self.item_ids), "distinct_identifiers": len(sizes),
                "colliding_items": int(sum(s for s in sizes if s > 1)),
                "largest_group": int(max(sizes, default=0))}

    def save(self, path: Path) -> None:
        from semcore.cache import write_json
        write_json(path, asdict(self))

    @classmethod
    def load(cls, path: Path) -> "IdentifierTable":
        return cls(**json.loads(Path(path).read_text()))


def add_suffixes(identifiers: list[str]) -> list[str]:
    """The 'w/o GSV' rule: items sharing an identifier get a numeric suffix 0, 1, … in order."""
    counts: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    for ident in identifiers:
        totals[ident] += 1
    out = []
    for ident in identifiers:
        if totals[ident] > 1:
            out.append(str(counts[ident]))
            counts[ident] += 1
        else:
            out.append("")
    return out
