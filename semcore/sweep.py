"""Parameter sweeps with papermill: a grid of overrides, one executed notebook per point.

A sweep is params/sweeps/<name>.yaml: a method, `fixed` overrides, and either a `grid` of
parameter values (every combination is a point) or an explicit list of `points` (Table 4's
backbone/fine-tuning rows, which are not a product); a point may name its own `method` (Table
4's baseline rows beside SemCORE's). Every point runs notebooks/sweeps/point.py under papermill with the profile plus its
overrides and writes its metrics to outputs/<profile>/sweeps/<name>/<point>.json, stamped with
the key of its parameters and the package code (semcore.cache.key_of). A point whose stamped
result is current is skipped, and the pipeline steps inside are cached, so an interrupted sweep
resumes where it stopped and a code change re-runs exactly the stale points. `collect` gathers the points into one table for plotting.
Every point's parameters are validated before the first one runs.
Run: `make sweep SWEEP=fig3 PROFILE=embedded` (or `python -m semcore.sweep fig3 --profile …`);
without a name, the sweeps the profile's report notebooks read (fig3_sweep, table4_sweep,
seed_sweep) run.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from semcore import cache, config, methods, paths, pipeline, readings, report, stats, tables

SWEEPS = paths.PARAMS / "sweeps"
POINT_NOTEBOOK = paths.REPO / "notebooks" / "sweeps" / "point.py"
KERNEL = "semcore"
REQUIRED_KEYS = {"title", "method", "x", "fixed"}
OPTIONAL_KEYS = {"curves", "grid", "points"}


@dataclass(frozen=True)
class Sweep:
    name: str
    title: str
    method: str
    x: str  # varied parameter on the x axis (or the table's row label)
    fixed: dict[str, Any]
    curves: str | None = None  # varied parameter drawn as one curve per value
    grid: dict[str, list[Any]] | None = None
    points: list[dict[str, Any]] | None = None  # explicit points instead of a grid

    def all_points(self) -> list[dict[str, Any]]:
        if self.points is not None:
            return [dict(pt) for pt in self.points]
        keys = sorted(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]

    def varied(self) -> list[str]:
        """The parameters the points set (sorted; `method` is not a parameter)."""
        return sorted({k for pt in self.all_points() for k in pt} - {"method"})

    def method_of(self, point: dict[str, Any]) -> str:
        return point.get("method", self.method)

    def overrides(self, point: dict[str, Any]) -> dict[str, Any]:
        return {**self.fixed, **{k: v for k, v in point.items() if k != "method"}}


def load(name: str) -> Sweep:
    """params/sweeps/<name>.yaml, validated: unknown spec keys, an unknown method, or a grid
    point that is not a valid parameter setting is an error naming it."""
    path = SWEEPS / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in SWEEPS.glob("*.yaml"))
        raise config.ParamError(f"no sweep {name!r} ({path}); sweeps: {known}")
    spec = config.read_yaml(path) or {}
    if not isinstance(spec, dict):
        raise config.ParamError(f"{path}: a sweep is a mapping of {sorted(REQUIRED_KEYS | OPTIONAL_KEYS)}")
    unknown = set(spec) - REQUIRED_KEYS - OPTIONAL_KEYS
    missing = REQUIRED_KEYS - set(spec)
    if unknown or missing or ("grid" in spec) == ("points" in spec):
        raise config.ParamError(f"{path}: unknown keys {sorted(unknown)}, missing keys "
                                f"{sorted(missing)}; a sweep has {sorted(REQUIRED_KEYS)}, optional "
                                "'curves', and exactly one of 'grid' or 'points'")
    grid, points = spec.get("grid"), spec.get("points")
    if not (isinstance(grid, dict) and all(isinstance(v, list) for v in grid.values())
            or isinstance(points, list) and all(isinstance(v, dict) for v in points)):
        raise config.ParamError(f"{path}: 'grid' must map each parameter to a list of values, "
                                "or 'points' be a list of mappings of parameter: value")
    sweep = Sweep(name=name, **spec)
    points = sweep.all_points()
    for name in {sweep.method_of(pt) for pt in points}:
        methods.get(name)
    if not points or len({point_name(pt) for pt in points}) < len(points):
        raise config.ParamError(f"{path}: the sweep needs at least one point, each different")
    if {sweep.x, sweep.curves or sweep.x} - set(sweep.varied()) - {"method"}:
        raise config.ParamError(f"{path}: x and curves must be parameters the points vary, got "
                                f"{sweep.x!r}, {sweep.curves!r}")
    for point in points:
        config.Params().replace(**sweep.overrides(point))
    return sweep


def point_name(point: dict[str, Any]) -> str:
    """A file-name-safe name of a point (a path or "${VAR:-…}" value loses its odd characters)."""
    return re.sub(r"[^\w.=,+-]", "_", ",".join(f"{k}={point[k]}" for k in sorted(point)))


def point_dir(profile: str, sweep: Sweep) -> Path:
    path = paths.outputs(profile) / "sweeps" / sweep.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def point_key(p: config.Params, method: str) -> str:
    return cache.key_of(step="sweep_point", method=method, params=p.to_dict())


def save_point(p: config.Params, sweep: Sweep, point: dict[str, Any], rows: list[dict]) -> Path:
    """What the point notebook writes: its key, its point, the value of every parameter some
    point varies (so rows that leave one at the profile's value still show it) and one
    metrics row per direction."""
    path = point_dir(p.profile, sweep) / f"{point_name(point)}.json"
    settings = {k: getattr(p, k) for k in sweep.varied()} | {"method": sweep.method_of(point)}
    cache.write_json(path, {"key": point_key(p, sweep.method_of(point)), "point": point,
                            "settings": settings,
                            "rows": rows})
    return path


def point_params(profile: str, sweep: Sweep, point: dict[str, Any]) -> config.Params:
    """The parameters a point runs with: the profile, the sweep's fixed overrides and the point's
    own (the empty point: the profile's own setting as the sweep trains it)."""
    return config.load(paths.PARAMS / f"{profile}.yaml", **sweep.overrides(point))


def _current(profile: str, sweep: Sweep, point: dict[str, Any]) -> bool:
    path = point_dir(profile, sweep) / f"{point_name(point)}.json"
    p = point_params(profile, sweep, point)
    return path.is_file() and json.loads(path.read_text())["key"] == point_key(p, sweep.method_of(point))


def _temporary(executed: Path, kind: str, pid: int) -> Path:
    return executed.with_name(f".{executed.stem}.{pid}.{kind}.ipynb")


def execute_notebook(source: Path, executed: Path, parameters: dict[str, Any]) -> None:
    """jupytext source → .ipynb → papermill run, written atomically to `executed`.

    The intermediate notebooks are hidden and named by process, so two sweeps at once never
    share one, and a killed sweep leaves nothing a re-run trips on (`remove_leftovers`)."""
    import jupytext
    import papermill

    nb = jupytext.read(source)
    nb.metadata["kernelspec"] = {"name": KERNEL, "language": "python", "display_name": KERNEL}
    built, partial = (_temporary(executed, kind, os.getpid()) for kind in ("source", "partial"))
    try:
        jupytext.write(nb, built)
        papermill.execute_notebook(str(built), str(partial), parameters=parameters,
                                   kernel_name=KERNEL, progress_bar=False, log_output=True,
                                   cwd=str(paths.REPO))
        os.replace(partial, executed)
    finally:
        built.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether a process runs; a zombie (killed, not yet reaped by its parent) does not."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir():  # Linux: /proc shows the state
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def remove_leftovers(folder: Path) -> None:
    """Delete the intermediate notebooks of sweeps that were killed (their process is gone)."""
    for leftover in folder.glob(".*.*.ipynb"):
        match = re.fullmatch(r"\..+\.(\d+)\.(source|partial)\.ipynb", leftover.name)
        if match and not _alive(int(match.group(1))):
            leftover.unlink(missing_ok=True)


def run(sweep: Sweep, profile: str) -> None:
    """Execute every point whose result is missing or stale, in grid order."""
    out = point_dir(profile, sweep)
    remove_leftovers(out)
    todo = [pt for pt in sweep.all_points() if not _current(profile, sweep, pt)]
    print(f"sweep {sweep.name} on {profile}: {len(sweep.all_points()) - len(todo)} of "
          f"{len(sweep.all_points())} points done", flush=True)
    for point in todo:
        print(f"  running {point_name(point)}", flush=True)
        execute_notebook(POINT_NOTEBOOK, out / f"{point_name(point)}.ipynb",
                         {"profile": profile, "overrides": sweep.overrides(point),
                          "sweep": sweep.name, "point": point})


def collect(sweep: Sweep, profile: str) -> pd.DataFrame:
    """One row per (point, direction); an error names the points missing or stale."""
    out = point_dir(profile, sweep)
    missing = [point_name(pt) for pt in sweep.all_points() if not _current(profile, sweep, pt)]
    if missing:
        raise FileNotFoundError(f"sweep {sweep.name!r} has no current result for {missing}; "
                                f"run `make sweep SWEEP={sweep.name} PROFILE={profile}`")
    rows = []
    for pt in sweep.all_points():
        result = json.loads((out / f"{point_name(pt)}.json").read_text())
        rows += [{**result["settings"], **row} for row in result["rows"]]
    return pd.DataFrame(rows)


def figure_title(sweep: Sweep, profile: str) -> str:
    return f"{sweep.title} ({methods.get(sweep.method).label}, {profile})"


def point_seconds(sweep: Sweep, profile: str) -> float:
    """The time the points took: the sum of papermill's duration of each executed point
    notebook (its last execution), so that it counts the run of every point, cached or not."""
    out = point_dir(profile, sweep)
    return sum(json.loads((out / f"{point_name(pt)}.ipynb").read_text())["metadata"]["papermill"]["duration"]
               for pt in sweep.all_points())


def _versus_own(sweep: Sweep, profile: str, own: config.Params, direction: str,
                rows: pd.DataFrame, labels: tuple[str, str]) -> str:
    """The best cell against the profile's own setting by a paired bootstrap on their per-query
    hits (the points' cached rankings); "" when the grid does not hold the profile's setting."""
    def at(row: Any) -> dict[str, Any]:
        return next(pt for pt in sweep.all_points() if all(pt[k] == row[k] for k in pt))

    mine = rows[(rows[sweep.x] == getattr(own, sweep.x)) & (rows[sweep.curves] == getattr(own, sweep.curves))]
    if mine.empty:
        return ""
    best = rows.loc[rows["R@1"].idxmax()]
    mine = mine.iloc[0]
    diff = None
    if at(best) != at(mine):
        r1 = [pipeline.hits(point_params(profile, sweep, at(row)), direction,
                            methods.get(sweep.method_of(at(row))))[1] for row in (best, mine)]
        diff = stats.paired_difference(*r1, seed=own.seed)
    return readings.grid_versus_own(best, mine, diff, len(rows), sweep.x, sweep.curves, *labels)


def reading(sweep: Sweep, profile: str, direction: str, rows: pd.DataFrame) -> str:
    """What the figure of one direction shows (notebook 06 and the summary read it alike): the
    best and weakest cells, and the best against the profile's own setting."""
    own = point_params(profile, sweep, {})
    labels = report.setting_label(sweep.x), report.setting_label(sweep.curves)
    return " ".join(filter(None, [readings.grid(rows, sweep.x, sweep.curves, *labels),
                                  _versus_own(sweep, profile, own, direction, rows, labels)]))


def summarise(sweep: Sweep, profile: str) -> Path:
    """A grid sweep with curves drawn beside its points: per direction a figure
    <name>_<direction> (.png, .pdf) with 95 % intervals and its table, and <name>.md, which holds
    the tables, a reading of each, the figures and the points' time (what `make readme SWEEP=…`
    copies). A list of points (Table 4's, whose points may name other methods) is a table."""
    if not (sweep.grid and sweep.curves):
        raise ValueError(f"sweep {sweep.name!r} is not a grid with curves, so it has no figure")
    grid = collect(sweep, profile)
    out = point_dir(profile, sweep)
    own = point_params(profile, sweep, {})
    parts = []
    for direction, rows in grid.groupby("direction", sort=False):
        stem = f"{sweep.name}_{direction}"
        with report.figure_style():
            fig = report.curves_figure(rows, sweep.x, sweep.curves, figure_title(sweep, profile),
                                       f"{direction.upper()} R@1 (%), 95 % interval")
            report.save_figure(fig, out / stem)
        plt.close(fig)
        caption = (f"{figure_title(sweep, profile)}, {direction.upper()} R@1 with its 95 % "
                   f"bootstrap interval over {int(rows['queries'].iloc[0]):,} {own.evaluate_on} queries.")
        report.write_table(tables.grid(rows, sweep.x, sweep.curves), out / stem, caption)
        text = reading(sweep, profile, direction, rows)
        parts.append(f"{(out / f'{stem}.md').read_text().strip()}\n\n{text}\n\n![{stem}]({stem}.png)\n")
    minutes = point_seconds(sweep, profile) / 60
    parts.append(f"Its {len(sweep.all_points())} points ran in {minutes:.0f} min on this "
                 f"machine ({os.cpu_count()} CPU cores; the sum of the point notebooks' own run "
                 f"times, papermill's record). `make sweep SWEEP={sweep.name} PROFILE={profile}` "
                 "made this.\n")
    summary = out / f"{sweep.name}.md"
    cache.atomic_write_text(summary, "\n".join(parts))
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Run a papermill parameter sweep.")
    ap.add_argument("name", nargs="?", help="params/sweeps/<name>.yaml (default: the sweeps the profile's report notebooks read)")
    ap.add_argument("--profile", default="embedded")
    args = ap.parse_args(argv)
    p = config.load(paths.PARAMS / f"{args.profile}.yaml")
    for name in [args.name] if args.name else profile_sweeps(p):
        sweep = load(name)
        run(sweep, args.profile)
        if sweep.grid and sweep.curves:
            print(f"  figures and tables: {summarise(sweep, args.profile)}", flush=True)


def profile_sweeps(p: config.Params) -> list[str]:
    """The sweeps a profile's report notebooks read: Table 4 and the training seeds (05), and
    Figure 3 (06)."""
    return list(dict.fromkeys(filter(None, [p.table4_sweep, p.seed_sweep, p.fig3_sweep])))


if __name__ == "__main__":
    main()
