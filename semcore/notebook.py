"""What every notebook does first and last: validated parameters in, a run summary out.

Every setting of a profile (a field of semcore.config.Params) is a papermill parameter. Each
notebook's parameters cell declares them all as None, which keeps the profile's value, so
`papermill --help-notebook` lists them with their types and `-p beam_size 30` sets one; several
can also come as one mapping (`-y 'overrides: {beam_size: 30}'`). The declarations are generated
from Params: `python -m semcore.notebook` rewrites them, and a test fails when they fall behind.

papermill only warns about a parameter the notebook does not declare, so setup() refuses any
value injected beside the declared ones: a typo is an error, not a silently ignored setting.
It checks that on the first run of the setup cell only: when it is run again in JupyterLab, the
later cells' variables are in the namespace too.

A run whose parameters differ from its profile's writes its tables, figures and run summaries
to outputs/<profile>+<hash>/ (the settings it changed in overrides.yaml there), so it never
replaces the results of `make reproduce`, which are the profile's own.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import platform
import re
import sys
import time
import typing
import warnings
from pathlib import Path
from typing import Any, Literal

import yaml

from semcore import cache, config, paths

FIELDS = tuple(f.name for f in dataclasses.fields(config.Params) if f.name != "profile")
DECLARED = {"profile", "overrides", *FIELDS}
MARKER = "# Every setting of the profile; None keeps its value."
_IPYTHON = {"In", "Out", "get_ipython", "exit", "quit", "open"}
_PARAMETER_TYPES = (str, int, float, bool, list, dict, tuple, type(None))  # what papermill injects
_CHECKED = "_semcore_parameters_checked"  # set in the notebook's namespace by its first setup()
_STARTED: dict[str, float] = {}
_ANNOUNCED: set[str] = set()  # override folders this process has named to the reader


def setup(namespace: dict[str, Any], declared: tuple[str, ...] = ()) -> config.Params:
    """Validate the notebook's parameters; call it first thing after the parameters cell
    (only imports may come before it). `declared` names a notebook's own extra parameters."""
    if _CHECKED not in namespace:
        extra = sorted(k for k, v in namespace.items() if not k.startswith("_")
                       and k not in DECLARED | _IPYTHON | set(declared)
                       and isinstance(v, _PARAMETER_TYPES))
        if extra:
            valid = ["profile", "overrides", *FIELDS, *declared]
            close = [m for k in extra for m in difflib.get_close_matches(k, valid, n=1)]
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise config.ParamError(f"unknown notebook parameter(s) {extra}.{hint} Valid: {', '.join(valid)}")
    profile = namespace.get("profile", "embedded")
    overrides = namespace.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise config.ParamError(f"parameter 'overrides' must be a mapping, got {overrides!r}: pass "
                                "it as -y 'overrides: {beam_size: 3}', or one setting as -p beam_size 3")
    named = {k: namespace[k] for k in FIELDS if namespace.get(k) is not None}
    twice = sorted(k for k in named.keys() & overrides.keys() if named[k] != overrides[k])
    if twice:
        raise config.ParamError(f"parameter(s) {twice} given twice with different values, "
                                "by name and in overrides")
    params = config.load(paths.PARAMS / f"{profile}.yaml", **{**overrides, **named})
    if params.profile != profile:
        raise config.ParamError(f"params/{profile}.yaml declares profile {params.profile!r}")
    namespace[_CHECKED] = True
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Deprecations raised inside the training stack (transformers' renames, say) are for this
    # package's developers, who see them in the tests; a notebook's reader can do nothing about them.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft|accelerate|torch)\.")
    # transformers' own bars (loading weights, converting a GGUF file) last a second and would stay
    # at 0 % in an executed notebook's text; the package's bars (training, decoding) stay on.
    from transformers.utils import logging as transformers_logging
    transformers_logging.disable_progress_bar()
    _STARTED[params.profile] = time.perf_counter()
    return params


def run_dir(p: config.Params) -> Path:
    """outputs/<profile>/ when p is the profile's own parameters, else outputs/<profile>+<hash
    of the settings that differ>/, which records those settings in overrides.yaml. Made when a
    notebook first writes there (a sweep point, which writes only its sweep's files, makes none)."""
    own = config.load(paths.PARAMS / f"{p.profile}.yaml").to_dict()
    changed = {k: v for k, v in p.to_dict().items() if own[k] != v}
    if not changed:
        return paths.outputs(p.profile)
    name = f"{p.profile}+{hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:8]}"
    path = paths.outputs(name)
    cache.atomic_write_text(path / "overrides.yaml", yaml.safe_dump(changed, sort_keys=True))
    if name not in _ANNOUNCED:
        _ANNOUNCED.add(name)
        print(f"settings {sorted(changed)} differ from params/{p.profile}.yaml: this run writes "
              f"to outputs/{name}/, not over the profile's outputs")
    return path


def run_params(name: str) -> config.Params | None:
    """The parameters of the run whose folder is outputs/<name>/ (run_dir's inverse): the
    profile's file, with a `<profile>+<hash>` run's recorded overrides.yaml on top; None where no
    params/<profile>.yaml exists."""
    profile = name.split("+")[0]
    path = paths.PARAMS / f"{profile}.yaml"
    if not path.is_file():
        return None
    recorded = paths.outputs(name) / "overrides.yaml"
    return config.load(path, **(config.read_yaml(recorded) if name != profile and recorded.is_file() else {}))


def out_dir(p: config.Params, kind: str) -> Path:
    """<run_dir>/<kind>/ (tables, figures, runs)."""
    path = run_dir(p) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def summary(p: config.Params, notebook: str, **facts: Any) -> None:
    """Write <run_dir>/runs/<notebook>.json: parameters, facts and wall time. It returns
    nothing, so the notebook's last cell does not echo a path of this machine."""
    cache.write_json(out_dir(p, "runs") / f"{notebook}.json",
                     {"notebook": notebook, "params": p.to_dict(), "facts": facts,
                      "seconds": round(time.perf_counter() - _STARTED.get(p.profile, 0), 1),
                      "python": platform.python_version()})


def declarations() -> list[str]:
    """The parameters cell's lines for every Params field: `name = None  # type: T  help`, the
    form papermill's --help-notebook reads (its help may hold no '=')."""
    hints = typing.get_type_hints(config.Params)
    defaults = config.Params().to_dict()
    lines = [MARKER]
    for name in FIELDS:
        kind, choices = hints[name], ""
        if typing.get_origin(kind) is Literal:
            choices = "|".join(typing.get_args(kind)) + "; "
            kind = str
        type_name = kind.__name__ if isinstance(kind, type) else str(kind).replace(" ", "")
        lines.append(f"{name} = None  # type: {type_name}  {choices}the profile's value, "
                     f"else {defaults[name]!r}")
    return lines


def write_declarations(source: Path) -> bool:
    """Replace the generated lines of a notebook's parameters cell (from MARKER to the cell's
    end); return whether the file changed."""
    text = source.read_text()
    pattern = re.compile(rf"^{re.escape(MARKER)}\n(?:(?!# %%).*\n)*?(?=\n*# %%)", re.M)
    if not pattern.search(text):
        raise ValueError(f"{source}: no line {MARKER!r} in its parameters cell")
    new = pattern.sub(lambda _: "\n".join(declarations()) + "\n", text, count=1)
    if new != text:
        source.write_text(new)
    return new != text


if __name__ == "__main__":
    sources = sorted((paths.REPO / "notebooks").rglob("*.py"))
    changed = [s for s in sources if MARKER in s.read_text() and write_declarations(s)]
    print(f"rewrote the parameters of {len(changed)} notebook(s)", file=sys.stderr)
