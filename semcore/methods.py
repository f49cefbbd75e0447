"""The named methods that the tables compare: an identifier scheme plus pipeline switches.

Each table row is one run of the same pipeline with one of these; the profile lists them by
name (table1_methods, table2_methods, table3_ablations) and a typo is an error naming the valid ones.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from semcore.errors import ParamError


@dataclass(frozen=True)
class Method:
    name: str
    label: str  # as in the paper's tables
    scheme: str  # identifier scheme (semcore.identifiers)
    collisions: str = "group"  # "group": shared ids are candidate groups; "suffix": made unique
    gsv: bool = False  # re-rank the top-k with Generative Semantic Verification
    constrained: bool = True  # trie-constrained beam search (else free generation + match)
    match: str = "normalized"  # unconstrained: generated string → identifier, "exact" or "normalized"
    use_global: bool = True  # SID: prefix the global (cluster) ID
    dedup: bool = True  # SID: drop keywords that repeat the cluster's top c-TF-IDF words
    rationale: bool = False  # SSI: the item's rationale follows its identifier in the target
    lexical_length: int = 0  # SID: keywords in the lexical ID (0: the profile's lexical_length)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def in_words(self) -> bool:
        """Whether its identifiers are caption words (a text score against a query means
        something: the identifier ceiling of notebook 01)."""
        return self.scheme in ("sid", "ssi", "string", "semantic")

    def training_key(self) -> dict:
        """What determines the trained model (decoding switches and GSV do not)."""
        return {"scheme": self.scheme, "collisions": self.collisions,
                "use_global": self.use_global, "dedup": self.dedup, "rationale": self.rationale,
                "lexical_length": self.lexical_length}


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("grace_numeric", "GRACE (Numeric ID)", "numeric", collisions="suffix"),
    Method("grace_atomic", "GRACE (Atomic ID)", "atomic", collisions="suffix"),
    Method("grace_structured", "GRACE (Structured ID)", "structured", collisions="suffix"),
    Method("grace_string", "GRACE (String ID)", "string", collisions="suffix"),
    Method("grace_semantic", "GRACE (Semantic ID)", "semantic", collisions="suffix"),
    Method("rq_avg", "AVG/IRGen-style RQ ID", "rq", collisions="suffix"),  # no paper row
    Method("ssi", "SSI (rationale-guided)", "ssi", collisions="suffix", rationale=True),
    Method("ssi_no_rationale", "SSI w/o rationale", "ssi", collisions="suffix"),
    Method("semcore", "SemCORE", "sid", gsv=True),
    Method("wo_gsv", "w/o GSV", "sid", collisions="suffix"),
    # Beyond the paper: an identifier's own ceiling (notebook 01) rises with every query word it
    # keeps, so 8 lexical keywords (twice the paper's 4) and no deduplication (the words it
    # removes are ones a query shares with the item's text); no GSV: compare with w/o GSV.
    Method("sid_long", "Long SID (8 keywords, no dedup; ours)", "sid", collisions="suffix",
           dedup=False, lexical_length=8),
    Method("wo_sid", "w/o SID", "sid_anonymous", gsv=True),
    Method("wo_global_id", "w/o global ID", "sid", gsv=True, use_global=False),
    Method("wo_deduplication", "w/o deduplication", "sid", gsv=True, dedup=False),
    Method("wo_constrained_decoding", "w/o constrained decoding", "sid", gsv=True,
           constrained=False),
    Method("wo_constrained_decoding_exact", "w/o constrained decoding (exact match)", "sid",
           gsv=True, constrained=False, match="exact"),  # no paper row: the paper names no match
]}


GSV_VARIANTS = {  # notebook 04's GSV formats by name → the parameters that make each
    "listwise (paper)": {"gsv_format": "listwise", "gsv_show_source": False},
    "listwise, permuted": {"gsv_format": "listwise_permuted", "gsv_show_source": False},
    "pointwise": {"gsv_format": "pointwise", "gsv_show_source": False},
    "pointwise + source text": {"gsv_format": "pointwise", "gsv_show_source": True},
    "likelihood": {"gsv_format": "likelihood", "gsv_show_source": False},
    "likelihood + source text": {"gsv_format": "likelihood", "gsv_show_source": True},
}


def check_method_names(key: str, names: list[str]) -> None:
    bad = [n for n in names if n not in METHODS]
    if bad:
        raise ParamError(f"parameter {key!r}: unknown method(s) {bad}; valid: {sorted(METHODS)}")


def get(name: str) -> Method:
    check_method_names("method", [name])
    return METHODS[name]


def resolve(names: list[str]) -> list[Method]:
    """Methods by name, each once, in first-mentioned order."""
    return [get(n) for n in dict.fromkeys(names)]


def distinct_models(used: list[Method]) -> list[Method]:
    """One method per distinct trained model (decoding switches and GSV share a model)."""
    seen: dict[str, Method] = {}
    for m in used:
        seen.setdefault(repr(sorted(m.training_key().items())), m)
    return list(seen.values())


def without_gsv(m: Method) -> Method:
    """The same run stopped before GSV (its decoding-only ranking)."""
    return replace(m, gsv=False)
