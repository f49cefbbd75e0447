# %% [markdown]
# # Sweep point
#
# One setting of a parameter sweep (`make sweep SWEEP=… PROFILE=…`, see `semcore.sweep`): the
# profile plus this point's overrides, the sweep's method evaluated in every direction. The
# collected sweep is plotted by notebook 06.

# %% tags=["parameters"]
profile = "embedded"
overrides = {}
sweep = "fig3"

# %%
import pandas as pd

from semcore import methods, notebook, pipeline
from semcore import sweep as sweeps

p = notebook.setup(globals(), declared=("sweep",))
spec = sweeps.load(sweep)
point = {k: getattr(p, k) for k in spec.grid}
rows = [pipeline.evaluate(p, d, methods.get(spec.method)) for d in p.directions]
sweeps.save_point(p, spec, point, rows)
pd.DataFrame(rows)
