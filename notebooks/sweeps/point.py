# %% [markdown]
# # Sweep point
#
# One setting of a parameter sweep (`make sweep SWEEP=… PROFILE=…`, see `semcore.sweep`): the
# profile plus this point's overrides, the point's method (the sweep's unless the point names
# one) evaluated in every direction. The
# collected sweep is plotted by notebook 06.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}
sweep = "fig3"
point = {}  # this point's own settings (also inside overrides), which name its result

# %%
import pandas as pd

from semcore import methods, notebook, pipeline
from semcore import sweep as sweeps

p = notebook.setup(globals(), declared=("sweep", "point"))
spec = sweeps.load(sweep)
if point not in spec.all_points():
    raise ValueError(f"point {point!r} is not a point of sweep {sweep!r}")
rows = [pipeline.evaluate(p, d, methods.get(spec.method_of(point))) for d in p.directions]
sweeps.save_point(p, spec, point, rows)
pd.DataFrame(rows)
