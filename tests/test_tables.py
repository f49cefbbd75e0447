"""Tables 1–3's reading is written from the table's own numbers; the seed spread from a seed
sweep's points."""
import math

import pandas as pd
import pytest

from semcore.tables import VS, reading, seed_spread


def row(name, label, r1, lo, hi, vs=math.nan, vs_lo=math.nan, vs_hi=math.nan):
    return {"name": name, "method": label, "R@1": r1, "R@1 lo": lo, "R@1 hi": hi, "queries": 1000,
            VS: vs, f"{VS} lo": vs_lo, f"{VS} hi": vs_hi}


def test_reading_names_chance_the_interval_and_the_rows_that_differ():
    df = pd.DataFrame([row("grace_numeric", "GRACE (Numeric ID)", 10.0, 8.2, 11.9, -15.0, -17.0, -13.0),
                       row("semcore", "SemCORE", 25.0, 22.3, 27.7),
                       row("sid_long", "Long SID", 26.0, 23.3, 28.8, 1.0, -0.8, 2.9)])
    text = reading(df, chance=0.1)
    assert "R@1 25.0 [22.3, 27.7] on 1000 queries (250.0× chance" in text
    assert "Below it: GRACE (Numeric ID)." in text
    assert "Not distinguishable from it on these queries: Long SID." in text
    assert "2.5×" in text and "below the paper's gap" not in text


def test_reading_says_where_semcore_misses_the_papers_gap_and_is_empty_without_semcore():
    df = pd.DataFrame([row("grace_numeric", "GRACE (Numeric ID)", 20.0, 18.0, 22.0, -5.0, -7.0, -3.0),
                       row("semcore", "SemCORE", 25.0, 22.3, 27.7)])
    assert "below the paper's gap" in reading(df, chance=0.1)
    assert reading(df[df["name"] != "semcore"], chance=0.1) == ""


def test_reading_flags_a_row_at_chance_and_reads_no_ratio_from_it():
    df = pd.DataFrame([row("grace_numeric", "GRACE (Numeric ID)", 0.2, 0.0, 0.5, -24.8, -27.5, -22.1),
                       row("semcore", "SemCORE", 25.0, 22.3, 27.7)])
    text = reading(df, chance=0.1)
    assert "At or near chance (R@1 interval reaching down to 3× chance): GRACE (Numeric ID)" in text
    assert "cannot be read from this table" in text and "125.0×" not in text
    assert "At or near chance" not in reading(df.iloc[1:], chance=0.1)


def test_seed_spread_is_mean_sd_and_bootstrap_half_width_per_method():
    points = pd.DataFrame({
        "label": ["SemCORE"] * 3 + ["GRACE (Numeric ID)"] * 3, "train_seed": [2, 0, 1] * 2,
        "R@1": [14.0, 10.0, 12.0, 3.0, 3.0, 3.0], "R@1 lo": [10.0, 6.0, 8.0, 1.0, 2.0, 1.0],
        "R@1 hi": [18.0, 14.0, 16.0, 5.0, 4.0, 5.0], "queries": [160] * 6})
    spread = seed_spread(points).set_index("method")
    s, g = spread.loc["SemCORE"], spread.loc["GRACE (Numeric ID)"]
    assert s["R@1 by seed"] == "10.0 / 12.0 / 14.0"  # in seed order
    assert (s["mean R@1"], s["seed SD"], s["seed range"], s["bootstrap half-width"]) == (12.0, 2.0, 4.0, 4.0)
    assert (g["seed SD"], g["seed range"]) == (0.0, 0.0) and g["bootstrap half-width"] == pytest.approx(5 / 3)
    assert list(spread.index) == ["SemCORE", "GRACE (Numeric ID)"] and s["seeds"] == 3
