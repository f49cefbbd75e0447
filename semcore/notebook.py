"""What every notebook does first and last: validated parameters in, a run summary out.

Notebooks are parameterised by papermill with `profile` (params/<profile>.yaml) and an
`overrides` mapping. papermill only warns about a parameter the notebook does not declare, so
setup() also refuses any variable injected beside those two: a typo is an error, not a
silently ignored setting.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from semcore import cache, config, paths

DECLARED = {"profile", "overrides"}
_IPYTHON = {"In", "Out", "get_ipython", "exit", "quit", "open"}
_PARAMETER_TYPES = (str, int, float, bool, list, dict, tuple, type(None))  # what papermill injects
_STARTED: dict[str, float] = {}


def setup(namespace: dict[str, Any], declared: tuple[str, ...] = ()) -> config.Params:
    """Validate the notebook's parameters; call it first thing after the parameters cell
    (only imports may come before it). `declared` names a notebook's own extra parameters."""
    extra = sorted(k for k, v in namespace.items() if not k.startswith("_")
                   and k not in DECLARED | _IPYTHON | set(declared)
                   and isinstance(v, _PARAMETER_TYPES))
    if extra:
        raise config.ParamError(f"unknown notebook parameter(s) {extra}: pass parameters as "
                                "`-p profile NAME` and `-y 'overrides: {key: value}'`; "
                                f"valid keys: {[f for f in config.Params.__dataclass_fields__]}")
    profile = namespace.get("profile", "embedded")
    params = config.load(paths.PARAMS / f"{profile}.yaml", **(namespace.get("overrides") or {}))
    if params.profile != profile:
        raise config.ParamError(f"params/{profile}.yaml declares profile {params.profile!r}")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _STARTED[params.profile] = time.perf_counter()
    return params


def out_dir(p: config.Params, kind: str) -> Path:
    """outputs/<profile>/<kind>/ (tables, figures, runs)."""
    path = paths.outputs(p.profile) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def summary(p: config.Params, notebook: str, **facts: Any) -> Path:
    """Write outputs/<profile>/runs/<notebook>.json: parameters, facts and wall time."""
    path = out_dir(p, "runs") / f"{notebook}.json"
    cache.write_json(path, {"notebook": notebook, "params": p.to_dict(), "facts": facts,
                            "seconds": round(time.perf_counter() - _STARTED.get(p.profile, 0), 1),
                            "python": platform.python_version()})
    return path
