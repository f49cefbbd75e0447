"""Prefix trie over tokenized identifiers, stored as flat sorted arrays for batched decoding.

Trie-constrained beam search asks, at every step and for every batch × beam row, "which tokens
may follow this prefix?". A pointer-based trie answers that with a Python loop over rows; here
the whole trie is a few arrays, so one step for all rows is one `searchsorted`:

- `keys[e] = parent * vocab_size + token` for every edge e, sorted ascending;
- `child[e]`, the node that edge leads to;
- `edge_start[p]`, where node p's run of edges starts (they end where p + 1's start).

The children of node p are the contiguous run keys[edge_start[p]:edge_start[p + 1]], already in
token order, so "allowed tokens" is two gathers plus a `repeat`. Node 0 is the root; nodes are
numbered in depth-first (lexicographic) order.

The arrays are numpy, in host memory: a decoding step's trie work is a few dozen operations on
arrays of batch × beam entries, where numpy's per-call cost is a third of torch's; only the final
scatter into the scores happens in torch, on the scores' device (`restrict`).

That sparse scatter costs time per allowed (row, token) pair, and near the root of a large trie
a node can have thousands of children (every first keyword of a popular cluster). The nodes
with the most children (at least V / 64) therefore also keep their allowed set as a dense bool
row, which `restrict` and `allowed_mask` copy instead of scattering; that keeps a decoding step
about as cheap for 1e6 identifiers as for 1e3. The rows are capped at 8 bytes per edge in total
(the size of `keys`); in practice they are a few MB. (Bit-packed rows would be 8x smaller but
unpacking them cost ~10x the copy.)

The trie is built without a per-node Python object: the sequences are sorted lexicographically,
and sequence i creates exactly the nodes for its positions at or beyond its longest common
prefix with sequence i-1. That keeps 1e6 identifiers of ~10 tokens to a few seconds and a few
hundred MB at peak (benchmarks/bench_trie.py).

Identifiers must be prefix-free: callers end every identifier with an end token (e.g. eos) that
occurs nowhere else, so a complete identifier is exactly a node without children (a leaf).
Identical sequences share a leaf; each leaf keeps the indices of all sequences that end there,
which is how a decoded identifier maps back to the items (or groups) it stands for.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import chain
from pathlib import Path

import numpy as np
import torch

_NEVER = -(2 ** 62)  # matches no key: below every node * vocab_size + token


@dataclass(frozen=True, eq=False)  # eq=False: field-wise == on arrays is ambiguous
class Trie:
    """Flat prefix trie; build with `Trie.build`, persist with `save` / `load`."""

    keys: np.ndarray        # int64 [E], sorted: parent * vocab_size + token
    child: np.ndarray       # int32 [E], node reached by edge e
    edge_start: np.ndarray  # int64 [nodes + 1]: node p's edges are keys[edge_start[p]:edge_start[p + 1]]
    leaf_nodes: np.ndarray  # int64 [n], leaf of each sequence, ascending
    leaf_items: np.ndarray  # int64 [n], original index of the sequence at that position
    dense_nodes: np.ndarray  # int64 [k], ascending: the nodes with the most children
    dense_rows: np.ndarray   # bool [k, V], their allowed tokens
    vocab_size: int
    num_nodes: int
    max_length: int         # longest sequence, i.e. the max_new_tokens a decoder needs

    @classmethod
    def build(cls, sequences: Sequence[Sequence[int]], vocab_size: int) -> Trie:
        """Trie of `sequences` (token ids in [0, vocab_size)); duplicates share a leaf.

        Raises ValueError for an empty sequence, an out-of-range token, or a sequence that is a
        proper prefix of another (its end could not be told from an inner node).
        """
        n = len(sequences)
        if n == 0:
            raise ValueError("cannot build a trie of no sequences")
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=n)
        if lengths.min() == 0:
            raise ValueError(f"sequence {int(np.argmin(lengths))} is empty")
        flat = np.fromiter(chain.from_iterable(sequences), dtype=np.int64, count=int(lengths.sum()))
        if flat.min() < 0 or flat.max() >= vocab_size:
            raise ValueError(f"token ids must lie in [0, {vocab_size})")
        width = int(lengths.max())
        # int32 halves the [n, width] working arrays; a vocabulary never nears 2**31.
        padded = np.full((n, width), -1, dtype=np.int32)  # -1 sorts a prefix before its extensions
        starts = np.cumsum(lengths) - lengths
        rows = np.repeat(np.arange(n), lengths)
        padded[rows, np.arange(flat.size) - starts[rows]] = flat
        del flat, rows
        order = np.lexsort(padded.T[::-1])  # last key is primary: sort by column 0, then 1, ...
        padded, lengths = padded[order], lengths[order]

        lcp = _lcp_with_previous(padded, lengths)
        prefix_of_next = (lcp[1:] == lengths[:-1]) & (lengths[:-1] < lengths[1:])
        if prefix_of_next.any():
            short, long = (int(o[prefix_of_next][0]) for o in (order[:-1], order[1:]))
            raise ValueError(f"sequence {short} is a proper prefix of sequence {long}; end every "
                             "identifier with an end token that occurs nowhere else")

        cols = np.arange(width)
        is_new = (cols >= lcp[:, None]) & (cols < lengths[:, None])  # positions that create a node
        new_id = np.cumsum(is_new.ravel(), dtype=np.int32).reshape(n, width)  # 1.. in DFS order
        node_at = _fill_shared(new_id, is_new)  # node of prefix [:j+1] of every sorted sequence
        del new_id
        parent = np.concatenate([np.zeros((n, 1), np.int32), node_at[:, :-1]], axis=1)[is_new]
        token = padded[is_new]
        child = node_at[is_new]
        leaves = node_at[np.arange(n), lengths - 1].astype(np.int64)
        del padded, node_at, is_new

        keys = parent.astype(np.int64) * vocab_size + token
        dense_nodes, dense_rows = _dense_rows(parent, token, vocab_size)
        num_nodes = int(child.size) + 1
        edge_start = np.concatenate([[0], np.cumsum(np.bincount(parent, minlength=num_nodes))])
        del parent, token
        edge_order = np.argsort(keys)
        return cls(keys=keys[edge_order], child=child[edge_order],
                   edge_start=edge_start.astype(np.int64), leaf_nodes=leaves, leaf_items=order,
                   dense_nodes=dense_nodes, dense_rows=dense_rows, vocab_size=int(vocab_size),
                   num_nodes=num_nodes, max_length=width)

    def __len__(self) -> int:
        """Number of sequences the trie was built from (duplicates counted)."""
        return int(self.leaf_items.size)

    @property
    def nbytes(self) -> int:
        """Memory held by the trie's arrays."""
        return sum(a.nbytes for a in self._arrays().values())

    def _arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def walk(self, prefixes) -> np.ndarray:
        """Node reached by each row of `prefixes` [N, t] (token ids, any array-like on the host),
        or -1 where the row left the trie. Vectorized over rows; one `step` per position."""
        prefixes = np.asarray(prefixes, dtype=np.int64)
        if prefixes.ndim != 2:
            raise ValueError(f"walk takes a 2-D array of prefixes, got shape {prefixes.shape}")
        node = np.zeros(prefixes.shape[0], dtype=np.int64)
        for token in prefixes.T:
            node = self.step(node, token)
        return node

    def step(self, nodes, tokens) -> np.ndarray:
        """Node reached from each of `nodes` [N] by the matching token of `tokens` [N], or -1
        where that edge does not exist (or the node is already -1): one searchsorted."""
        nodes, tokens = np.asarray(nodes, dtype=np.int64), np.asarray(tokens, dtype=np.int64)
        # A token outside the vocabulary could alias another node's key (node * V + V + 1 is
        # (node + 1) * V + 1); mapped to _NEVER its key is negative, like any key from node -1.
        tokens = np.where((tokens >= 0) & (tokens < self.vocab_size), tokens, _NEVER)
        key = tokens + nodes * self.vocab_size
        pos = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
        return np.where(self.keys[pos] == key, self.child[pos].astype(np.int64), -1)

    def allowed_tokens(self, nodes) -> tuple[np.ndarray, np.ndarray]:
        """Sparse allowed sets as (row, token) pairs: the children of each node in `nodes` [N].

        Leaves and -1 contribute no pair. Tokens come out ascending within each row.
        """
        rows, flat = self._allowed_flat(np.asarray(nodes, dtype=np.int64))
        return rows, flat - rows * self.vocab_size

    def _allowed_flat(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, row * vocab_size + token) of every allowed pair, gathered with no search."""
        node = np.maximum(nodes, 0)
        lo = self.edge_start[node]
        counts = np.where(nodes >= 0, self.edge_start[node + 1] - lo, 0)
        rows = np.repeat(np.arange(nodes.size), counts)
        pos = np.arange(rows.size) + (lo - (np.cumsum(counts) - counts))[rows]
        return rows, self.keys[pos] + (rows - node[rows]) * self.vocab_size

    def _split(self, nodes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows whose node keeps a dense row, those rows' slots in dense_rows, the flat
        row * vocab_size + token index of every other row's allowed pairs)."""
        nodes = np.array(nodes, dtype=np.int64)
        heavy = slots = np.zeros(0, np.int64)
        if self.dense_nodes.size:
            slot = np.minimum(np.searchsorted(self.dense_nodes, nodes), self.dense_nodes.size - 1)
            heavy = np.flatnonzero(self.dense_nodes[slot] == nodes)
            slots = slot[heavy]
            nodes[heavy] = -1  # scatter only the remaining rows
        return heavy, slots, self._allowed_flat(nodes)[1]

    def allowed_mask(self, nodes) -> torch.Tensor:
        """Dense BoolTensor [N, vocab_size]: True where the token may follow the node."""
        heavy, slots, flat = self._split(nodes)
        mask = np.zeros((len(nodes), self.vocab_size), dtype=bool)
        mask[heavy] = self.dense_rows[slots]
        mask.reshape(-1)[flat] = True
        return torch.from_numpy(mask)

    def restrict(self, scores: torch.Tensor, nodes) -> torch.Tensor:
        """A copy of `scores` [N, vocab_size] with -inf wherever the token may not follow the
        row's node. Gathers only the allowed entries into a -inf tensor instead of building and
        inverting a dense mask: 3-5x cheaper for a decoding batch over ~1e3 identifiers, about
        even at 1e6 (benchmarks/bench_trie.py prints both). Rows of dense nodes are masked
        whole; the rest are one flat gather and scatter on the scores' device."""
        heavy, slots, flat = self._split(nodes)
        out = torch.full_like(scores, float("-inf"))
        if heavy.size:
            rows = torch.from_numpy(heavy).to(scores.device)
            keep = torch.from_numpy(self.dense_rows[slots]).to(scores.device)
            out[rows] = scores[rows].masked_fill(~keep, float("-inf"))
        flat = torch.from_numpy(flat).to(scores.device)
        out.view(-1)[flat] = scores.view(-1)[flat]
        return out

    def lookup(self, sequence: Sequence[int]) -> list[int]:
        """Indices of the input sequences equal to `sequence`; [] if it is no full identifier."""
        return self.lookup_many([sequence])[0]

    def lookup_many(self, sequences: Sequence[Sequence[int]]) -> list[list[int]]:
        """`lookup` of every sequence, with one walk per distinct length (a decoded batch's
        hypotheses at once, not one walk each)."""
        found: list[list[int]] = [[] for _ in sequences]
        by_length: dict[int, list[int]] = {}
        for i, seq in enumerate(sequences):
            if len(seq):
                by_length.setdefault(len(seq), []).append(i)
        for rows in by_length.values():
            nodes = self.walk([list(sequences[i]) for i in rows])
            lo = np.searchsorted(self.leaf_nodes, nodes)
            hi = np.searchsorted(self.leaf_nodes, nodes, side="right")
            for i, a, b in zip(rows, lo.tolist(), hi.tolist()):
                found[i] = sorted(self.leaf_items[a:b].tolist())
        return found

    def save(self, path: str | Path) -> None:
        """Write the arrays to an uncompressed .npz (loads with a plain read, no rebuild)."""
        with open(path, "wb") as f:
            np.savez(f, **self._arrays(),
                     meta=np.array([self.vocab_size, self.num_nodes, self.max_length]))

    @classmethod
    def load(cls, path: str | Path) -> Trie:
        """Inverse of `save`."""
        with np.load(path) as z:
            vocab_size, num_nodes, max_length = (int(v) for v in z["meta"])
            arrays = {name: z[name] for name in z.files if name != "meta"}
        return cls(**arrays, vocab_size=vocab_size, num_nodes=num_nodes, max_length=max_length)


def _lcp_with_previous(padded: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Common-prefix length of each sorted sequence with the one before it (0 for the first)."""
    differs = padded[1:] != padded[:-1]
    first_diff = np.where(differs.any(axis=1), differs.argmax(axis=1), padded.shape[1])
    lcp = np.minimum(first_diff, np.minimum(lengths[1:], lengths[:-1]))
    return np.concatenate([[0], lcp])


def _fill_shared(new_id: np.ndarray, is_new: np.ndarray) -> np.ndarray:
    """Node id at every (sorted sequence, position): its own new node, else the node of the
    nearest earlier sequence that created one at that position (sorting makes that the shared
    prefix). Column by column, so the temporaries are one column long."""
    node_at = np.empty_like(new_id)
    rows = np.arange(new_id.shape[0], dtype=np.int32)
    for j in range(new_id.shape[1]):
        owner = np.maximum.accumulate(np.where(is_new[:, j], rows, 0))
        node_at[:, j] = new_id[owner, j]
    return node_at


def _dense_rows(parent: np.ndarray, token: np.ndarray,
                vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense allowed sets of the nodes with at least max(2, V / 64) children (a single child is
    cheaper to scatter), the largest first, as many as fit in 8 bytes per edge."""
    counts = np.bincount(parent)
    candidates = np.flatnonzero(counts >= max(2, vocab_size // 64))
    budget = 8 * parent.size // vocab_size
    dense_nodes = np.sort(candidates[np.argsort(-counts[candidates], kind="stable")[:budget]])
    slot = np.full(counts.size, -1, dtype=np.int64)
    slot[dense_nodes] = np.arange(dense_nodes.size)
    slot = slot[parent]
    rows = np.zeros((dense_nodes.size, vocab_size), dtype=bool)
    rows[slot[slot >= 0], token[slot >= 0]] = True
    return dense_nodes.astype(np.int64), rows
