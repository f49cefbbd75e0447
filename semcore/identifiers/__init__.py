"""Identifier schemes by name: SemCORE's SID and its ablation, GRACE's baselines, an RQ
stand-in, and SSI's LM-written structured identifiers.

Every scheme honours IdentifierOptions.collisions the same way (sid.assemble): "group" keeps
shared identifiers as candidate groups for GSV, "suffix" numbers their items (w/o GSV).
"""
from __future__ import annotations

from typing import Callable

from semcore.identifiers.base import IdentifierInputs, IdentifierOptions, IdentifierTable
from semcore.identifiers.baselines import (build_atomic, build_numeric, build_rq, build_semantic,
                                           build_string, build_structured)
from semcore.identifiers.sid import build_sid, build_sid_anonymous
from semcore.identifiers.ssi import build_ssi

Builder = Callable[[IdentifierInputs, IdentifierOptions], IdentifierTable]

SCHEMES: dict[str, Builder] = {
    "sid": build_sid,
    "sid_anonymous": build_sid_anonymous,
    "numeric": build_numeric,
    "atomic": build_atomic,
    "structured": build_structured,
    "string": build_string,
    "semantic": build_semantic,
    "rq": build_rq,
    "ssi": build_ssi,
}


def build_identifiers(scheme: str, inputs: IdentifierInputs,
                      opts: IdentifierOptions) -> IdentifierTable:
    """The identifier table of one scheme; an unknown name is a ValueError listing the valid."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown identifier scheme {scheme!r}; valid: {sorted(SCHEMES)}")
    return SCHEMES[scheme](inputs, opts)
