"""Typed, validated parameters.

A profile is one flat YAML file (params/<profile>.yaml). papermill merges parameter files
shallowly and only warns on unknown keys, so every key is validated here: an unknown or
mistyped key, a value of the wrong type or outside its allowed set, or values that contradict
each other (gsv_k above beam_size), is an error that names the key and what is allowed, raised
when the parameters are read, before any work starts. A YAML syntax error or a key given twice
names the file and line.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from semcore import paths
from semcore.errors import ParamError
from semcore.methods import GSV_VARIANTS, check_method_names


@dataclass(frozen=True)
class Params:
    """Every parameter of a profile. Defaults are the embedded profile's."""

    profile: str = "embedded"
    seed: int = 0  # the data, splits, clustering, query samples and bootstrap
    # the models' initialisation and example order (training seeds: params/sweeps/seeds.yaml)
    train_seed: int = 0

    # --- data -------------------------------------------------------------------------
    dataset: Literal["embedded", "captions_jsonl", "karpathy"] = "embedded"
    data_path: str = ""  # captions_jsonl folder or Karpathy JSON; "$VAR" is expanded
    image_root: str = ""  # Karpathy image folder; "$VAR" is expanded
    embedded_train_images: int = 240
    embedded_test_images: int = 80
    max_train_images: int = 0  # 0 = all
    max_test_images: int = 0  # 0 = all
    max_queries: int = 0  # test queries per direction, a seeded sample (0 = all); tables show the count
    image_size: int = 32
    # Settings are chosen on a validation split carved from train (`data.carve_validation`):
    # "validation" evaluates on validation_images train images instead of the test split, and
    # drops the test split from every step (identifiers, training, decoding).
    evaluate_on: Literal["test", "validation"] = "test"
    validation_images: int = 40

    # --- identifiers (paper §3.2) ----------------------------------------------------
    # "generated": the backbone, trained to caption on the train split, captions every image
    # (the paper's source); "heldout": one ground-truth caption per image is set aside.
    caption_source: Literal["heldout", "generated"] = "heldout"
    heldout_caption_index: int = 0
    caption_epochs: int = 5  # 0: caption zero-shot with the chat template (pretrained MLLMs)
    caption_max_tokens: int = 24
    cluster_size: int = 8
    cluster_size_meaning: Literal["clusters", "items_per_cluster"] = "clusters"
    lexical_length: int = 4
    dedup_top_n: int = 5
    global_id_style: Literal["words", "number"] = "words"
    global_id_words: int = 1
    text_encoder: Literal["all-MiniLM-L6-v2"] = "all-MiniLM-L6-v2"

    # --- backbone and training (paper §3.4, appendix A.1) ------------------------------
    # tiny: random InternVL from config classes (tests, embedded default); scratch: a small
    # Llama (tiny_hidden × tiny_layers) from scratch over frozen DINOv2 features (fast, real
    # photos on CPU); smol: SmolLM2-135M + frozen DINOv2 features + trained projector (CPU);
    # internvl2_5-*: the paper's backbones, native InternVL checkpoints from backbone_path (GPU).
    backbone: Literal["tiny", "scratch", "smol", "internvl2_5-1b", "internvl2_5-2b", "internvl2_5-4b",
                      "internvl2_5-8b"] = "tiny"
    backbone_path: str = ""  # InternVL: hub id or folder of a native (model_type internvl) checkpoint
    finetune: Literal["full", "lora"] = "full"  # paper: 1B/2B full, 4B/8B LoRA
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    gradient_checkpointing: bool = False
    # bf16: training and inference under bfloat16 autocast (≈2× faster training, ≈3.5× faster
    # forward on CPUs with AMX; GPUs train in bf16 regardless), but ~20× slower than fp32 where
    # the CPU has no bf16 instructions (AVX2 only) and autocast emulates it; fp32 keeps scores
    # bit-comparable with a plain forward pass (tests, tiny). auto: bf16 where it runs natively
    # (native_bf16), else fp32, resolved when the parameters are read, so keys and tables name
    # the precision that ran.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    deepspeed_config: str = ""  # e.g. params/deepspeed/zero2.json, used under `make train LAUNCHER=deepspeed`
    tiny_hidden: int = 128
    tiny_layers: int = 2
    # minilm: every text input (query, pseudo-query, GSV sentence and captions) also reaches the
    # model as its frozen all-MiniLM-L6-v2 sentence embedding, one projected feature token beside
    # its words: the text counterpart of the frozen DINOv2 image features, for the backbones on
    # features (scratch, smol). A model trained from scratch then starts from pretrained sentence
    # semantics, as the paper's pretrained MLLM does; none: words only.
    text_features: Literal["none", "minilm"] = "none"
    epochs: int = 5
    batch_size: int = 16
    learning_rate: float = 2e-3
    corpus_repeats: int = 4  # corpus items are memorised: their examples repeat per epoch
    # batches of examples of similar length (a third fewer tokens per step on Flickr8k, where
    # validation saw no change; on the embedded data it made memorisation worse: semcore.train)
    group_by_length: bool = False

    # --- decoding and GSV (paper §3.3, appendix A.2) -------------------------------------
    beam_size: int = 20
    # identifier score in beam search: "sum" is eq. 1 (the paper's); the others are compared in notebook 03
    decode_score: Literal["sum", "length_normalized", "renormalized"] = "sum"
    gsv_k: int = 10
    # how the verifier scores its candidates (semcore.gsv): "listwise" is the paper's lettered
    # prompt; "listwise_permuted" averages it over cyclic shifts; "pointwise" asks yes/no per
    # candidate; "likelihood" scores how well each candidate predicts the query's words
    gsv_format: Literal["listwise", "listwise_permuted", "pointwise", "likelihood"] = "listwise"
    gsv_show_source: bool = False  # T2I: show each candidate's own source text (never a query)
    gsv_decode_weight: float = 0.0  # re-rank by verifier + this × decoding score (0: paper, verifier alone)
    gsv_epochs: int = 3
    gsv_train_queries: int = 400  # train-split queries whose candidates become GSV examples (0: all)
    gsv_k_sweep: list[int] = field(default_factory=lambda: [3, 5, 10])  # notebook 04: R@K vs k
    # the formats notebook 04 compares on the validation split (names of methods.GSV_VARIANTS)
    gsv_variants: list[str] = field(default_factory=lambda: list(GSV_VARIANTS))

    # --- what the report notebooks run ------------------------------------------------
    directions: list[str] = field(default_factory=lambda: ["t2i", "i2t"])
    ablation_directions: list[str] = field(default_factory=lambda: ["t2i"])  # Table 3 (paper: T2I)
    table1_methods: list[str] = field(  # Table 1: text-to-image
        default_factory=lambda: ["grace_numeric", "grace_structured", "semcore"])
    table2_methods: list[str] = field(  # Table 2: image-to-text
        default_factory=lambda: ["grace_structured", "semcore"])
    table3_ablations: list[str] = field(
        default_factory=lambda: ["semcore", "wo_gsv", "wo_sid", "wo_global_id",
                                 "wo_deduplication", "wo_constrained_decoding"])
    beam_sweep: list[int] = field(default_factory=lambda: [10, 20, 30, 40, 50])
    # `make reproduce` runs the sweeps beside notebooks 00–04 in this many processes, each with
    # its share of the cores (read by the Makefile): 2 suits many small models (embedded), 1 a
    # few large ones, whose steps the sweeps share with the notebooks (a waiting job idles).
    jobs: int = 1
    fig3_sweep: str = "fig3"  # params/sweeps/<name>.yaml that Figure 3 is drawn from
    table4_sweep: str = "table4"  # params/sweeps/<name>.yaml that Table 4 (backbones) is read from
    seed_sweep: str = "seeds"  # params/sweeps/<name>.yaml of notebook 05's training seeds ("": none)

    def __post_init__(self) -> None:
        _check_ranges(self)
        if self.precision == "auto":
            object.__setattr__(self, "precision", "bf16" if native_bf16() else "fp32")

    def replace(self, **changes: Any) -> "Params":
        """A copy with some values changed, validated like a file."""
        return from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def expanded(self, key: str) -> str:
        """A string parameter with $VAR and ${VAR:-default} expanded; an error names the key if
        it is empty or uses an unset variable."""
        raw = getattr(self, key)
        with_defaults = re.sub(r"\$\{(\w+):-([^}]*)\}",
                               lambda m: os.environ.get(m.group(1)) or m.group(2), raw)
        expanded = os.path.expandvars(os.path.expanduser(with_defaults))
        if not raw or "$" in expanded:
            raise ParamError(f"parameter {key!r} = {raw!r} is empty or uses an unset variable "
                             "(set it in the profile or export the variable it uses)")
        return expanded

    def resolved_path(self, key: str) -> Path:
        """A path parameter, expanded, relative paths taken from the repository root."""
        return paths.REPO / self.expanded(key)  # an absolute path stays as it is


_POSITIVE = ("embedded_train_images", "embedded_test_images", "image_size", "cluster_size",
             "lexical_length", "tiny_hidden", "tiny_layers", "epochs",
             "batch_size", "beam_size", "gsv_k", "global_id_words", "corpus_repeats",
             "caption_max_tokens", "lora_rank", "lora_alpha", "jobs", "validation_images")
_NON_NEGATIVE = ("caption_epochs", "max_train_images", "max_test_images", "max_queries", "dedup_top_n", "gsv_epochs",
                 "gsv_train_queries", "heldout_caption_index", "seed", "train_seed", "gsv_decode_weight")
DIRECTIONS = ("t2i", "i2t")


def native_bf16() -> bool:
    """Whether this machine computes bfloat16 natively: a CPU with AMX or AVX512-BF16, or a CUDA
    GPU that supports it."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and re.search(r"\b(amx_bf16|avx512_bf16)\b", cpuinfo.read_text()):
        return True
    import torch
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _check_ranges(p: Params) -> None:
    for key in _POSITIVE:
        if getattr(p, key) <= 0:
            raise ParamError(f"parameter {key!r} must be > 0, got {getattr(p, key)!r}")
    for key in _NON_NEGATIVE:
        if getattr(p, key) < 0:
            raise ParamError(f"parameter {key!r} must be >= 0, got {getattr(p, key)!r}")
    if p.backbone.startswith("internvl") and not p.backbone_path:
        raise ParamError(f"parameter 'backbone_path' must name a native InternVL checkpoint "
                         f"(hub id or folder) for backbone {p.backbone!r}")
    if p.text_features != "none" and p.backbone not in ("scratch", "smol"):
        raise ParamError(f"parameter 'text_features' = {p.text_features!r} needs a backbone on "
                         f"features ('scratch' or 'smol'), got backbone {p.backbone!r}")
    if not 0 <= p.lora_dropout < 1:
        raise ParamError(f"parameter 'lora_dropout' must be in [0, 1), got {p.lora_dropout!r}")
    if p.learning_rate <= 0:
        raise ParamError(f"parameter 'learning_rate' must be > 0, got {p.learning_rate!r}")
    if p.image_size % 8:
        raise ParamError(f"parameter 'image_size' must be a multiple of 8 (8×8 patches), got {p.image_size}")
    if p.gsv_k > 26:
        raise ParamError(f"parameter 'gsv_k' must be at most 26 (answer letters A–Z), got {p.gsv_k}")
    if p.heldout_caption_index > 4:
        raise ParamError("parameter 'heldout_caption_index' must be in 0..4 "
                         f"(five captions per image), got {p.heldout_caption_index}")
    bad = [d for d in p.directions if d not in DIRECTIONS]
    if bad or not p.directions:
        raise ParamError(f"parameter 'directions' must be a non-empty subset of {DIRECTIONS}, "
                         f"got {p.directions!r}")
    if any(d not in p.directions for d in p.ablation_directions):
        raise ParamError("parameter 'ablation_directions' must be a subset of 'directions' "
                         f"{p.directions!r}, got {p.ablation_directions!r}")
    _check_beams(p)
    _check_backbone_path(p)
    for key in ("fig3_sweep", "table4_sweep", "seed_sweep"):
        name = getattr(p, key)
        if (name or key != "seed_sweep") and not (paths.PARAMS / "sweeps" / f"{name}.yaml").is_file():
            raise ParamError(f"parameter {key!r} = {getattr(p, key)!r} names no file in params/sweeps/")
    bad = [v for v in p.gsv_variants if v not in GSV_VARIANTS]
    if bad or not p.gsv_variants:
        raise ParamError(f"parameter 'gsv_variants' must be a non-empty list of {sorted(GSV_VARIANTS)}, "
                         f"got {p.gsv_variants!r}")
    for key in ("table1_methods", "table2_methods", "table3_ablations"):
        if not getattr(p, key):
            raise ParamError(f"parameter {key!r} is empty: its table needs at least one method, "
                             f"e.g. [semcore]")
        check_method_names(key, getattr(p, key))


def _check_beams(p: Params) -> None:
    """Beam search keeps at least 2 hypotheses (transformers' beam search), and GSV re-ranks the
    top gsv_k of a beam, so the beam must hold them: at beam_size and at every beam of
    beam_sweep (notebook 03 runs SemCORE at each); each k of gsv_k_sweep becomes a run's gsv_k
    (notebook 04), so the same holds for it."""
    if p.beam_size < 2:
        raise ParamError(f"parameter 'beam_size' must be at least 2 (beam search keeps two "
                         f"hypotheses or more), got {p.beam_size}")
    if any(b < 2 for b in p.beam_sweep) or not p.beam_sweep:
        raise ParamError(f"parameter 'beam_sweep' must hold beam sizes of at least 2, got {p.beam_sweep!r}")
    if any(not 0 < k <= 26 for k in p.gsv_k_sweep):
        raise ParamError(f"parameter 'gsv_k_sweep' must hold values in 1..26, got {p.gsv_k_sweep!r}")
    if p.gsv_k > p.beam_size:
        raise ParamError(f"parameter 'gsv_k' = {p.gsv_k} is larger than 'beam_size' = {p.beam_size}: "
                         f"GSV re-ranks the top gsv_k of the beam, so use gsv_k <= {p.beam_size}")
    small = [b for b in p.beam_sweep if b < p.gsv_k]
    if small:
        raise ParamError(f"parameter 'beam_sweep' holds beams {small} smaller than 'gsv_k' = "
                         f"{p.gsv_k} (SemCORE re-ranks the top gsv_k of each beam); use beams >= {p.gsv_k}")
    smallest = min([p.beam_size, *p.beam_sweep])
    big = [k for k in p.gsv_k_sweep if k > smallest]
    if big:
        raise ParamError(f"parameter 'gsv_k_sweep' holds {big}, larger than the smallest beam "
                         f"({smallest}, of 'beam_size' and 'beam_sweep'): each k is the gsv_k of "
                         f"a run, so use values <= {smallest}")


HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")  # org/name, as the Hugging Face hub spells a repository


def _check_backbone_path(p: Params) -> None:
    """An InternVL backbone_path is a hub id (org/name) or a folder that exists."""
    if not p.backbone.startswith("internvl"):
        return
    value = p.expanded("backbone_path")
    if HUB_ID.fullmatch(value) and not value.startswith("."):
        return
    if not (paths.REPO / value).is_dir():
        variables = re.findall(r"\$\{?(\w+)", p.backbone_path)
        via = f" (from ${variables[0]})" if variables and os.environ.get(variables[0]) else ""
        raise ParamError(f"parameter 'backbone_path' = {p.backbone_path!r} reads {value!r}{via}, "
                         "which is no folder and no hub id (org/name): point it at a native "
                         "InternVL checkpoint folder or hub id")


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Literal:
        return value in get_args(annotation)
    if origin is list:
        (inner,) = get_args(annotation)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


def _number_hint(value: Any, annotation: Any) -> str:
    """Why a number may have arrived as text: YAML 1.1 reads 1e-3 (no dot) as a string."""
    if annotation is not float or not isinstance(value, str):
        return ""
    try:
        float(value)
    except ValueError:
        return ""
    mantissa, _, exponent = value.lower().partition("e")
    fixed = f"{mantissa}.0e{exponent}" if exponent and "." not in mantissa else value
    return (f". YAML reads {value} as a string, not a number (exponent form needs a dot); "
            f"write {fixed}")


def from_dict(values: dict[str, Any]) -> Params:
    """Validate a flat mapping into Params; unknown keys and bad types name the key."""
    hints = typing.get_type_hints(Params)
    known = [f.name for f in fields(Params)]
    for key, value in values.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ParamError(f"unknown parameter {key!r}.{hint} Valid parameters: {', '.join(known)}")
        if not _type_ok(value, hints[key]):
            allowed = get_args(hints[key]) if get_origin(hints[key]) is Literal else hints[key]
            raise ParamError(f"parameter {key!r} = {value!r} is invalid; expected {allowed}"
                             + _number_hint(value, hints[key]))
    coerced = {k: float(v) if hints[k] is float else v for k, v in values.items()}
    return Params(**coerced)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ParamError(f"{self.name}, line {line}: key {key!r} is given twice (also on "
                                 f"line {seen[key]}); keep one")
            seen[key] = line
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> Any:
    """A YAML file's content; a syntax error or a repeated key names the file and line."""
    with path.open(encoding="utf-8") as handle:
        try:
            return yaml.load(handle, Loader=_UniqueKeyLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            opened = (f" ({exc.context} on line {exc.context_mark.line + 1})"
                      if exc.context and exc.context_mark and exc.problem_mark else "")
            raise ParamError(f"{path}{where}: YAML syntax error: {exc.problem or exc.context}"
                             f"{opened}") from None
        except yaml.YAMLError as exc:
            raise ParamError(f"{path}: YAML syntax error: {exc}") from None


def load(*files: str | Path, **overrides: Any) -> Params:
    """Read one or more flat YAML files (later ones win) plus overrides into Params."""
    merged: dict[str, Any] = {}
    for f in files:
        path = Path(f)
        if not path.is_file():
            profiles = sorted(q.stem for q in paths.PARAMS.glob("*.yaml"))
            raise ParamError(f"parameter file not found: {path} (profiles in params/: {profiles})")
        data = read_yaml(path) or {}
        if not isinstance(data, dict) or any(isinstance(v, dict) for v in data.values()):
            raise ParamError(f"{path}: a parameter file must be one flat mapping of key: value")
        merged.update(data)
    merged.update(overrides)
    return from_dict(merged)

