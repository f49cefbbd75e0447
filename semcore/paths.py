"""Where things live: the repository, each profile's outputs, and the step cache."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PARAMS = REPO / "params"


def outputs(profile: str) -> Path:
    """outputs/<profile>/: executed notebooks, tables, figures, run summaries."""
    root = Path(os.environ.get("SEMCORE_OUTPUTS", REPO / "outputs"))
    path = root / profile
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_root() -> Path:
    """Content-addressed step results (SEMCORE_CACHE overrides; shared by all profiles)."""
    path = Path(os.environ.get("SEMCORE_CACHE", REPO / "cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
