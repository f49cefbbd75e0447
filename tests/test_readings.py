"""The generated readings say what the numbers say (and change when the numbers do)."""
import pandas as pd

from semcore import readings, report


def r1(value, lo, hi, **extra):
    return {"R@1": value, "R@1 lo": lo, "R@1 hi": hi, **extra}


def test_collisions_name_the_worst_scheme_or_say_all_are_unique():
    stats = pd.DataFrame([
        {"direction": "t2i", "method": "SemCORE", "items": 40, "colliding_items": 6, "largest_group": 3,
         "mean tokens": 5.0},
        {"direction": "t2i", "method": "GRACE (Numeric ID)", "items": 40, "colliding_items": 0,
         "largest_group": 1, "mean tokens": 3.0}])
    text = readings.collisions(stats)
    assert "1 of 2 schemes" in text and "most SemCORE (6 items, groups of up to 3)" in text
    assert "3.0 tokens (GRACE (Numeric ID)) to 5.0 (SemCORE)" in text
    unique = readings.collisions(stats.assign(colliding_items=0))
    assert "every scheme gives every item its own identifier" in unique


def test_examples_measure_words_taken_from_the_source_text():
    df = pd.DataFrame({"item": ["a", "b"], "source text": ["a red ball", "a blue box"],
                       "SemCORE": ["**red** ball", "**blue** sky"], "GRACE (Numeric ID)": ["1 2", "3 4"]})
    text = readings.examples(df)
    assert "SemCORE 75 %" in text  # red, ball, blue of red, ball, blue, sky
    assert "GRACE" not in text  # digits are not words: nothing to measure


def test_recipe_says_whether_the_profile_is_best_tied_or_beaten():
    rows = lambda ours, other: pd.DataFrame([{"setting": "profile's setting", **ours},  # noqa: E731
                                             {"setting": "epochs / 3", **other}])
    assert "the best row" in readings.recipe(rows(r1(30, 25, 35), r1(20, 15, 25)))
    assert "Clearly worse: epochs / 3" in readings.recipe(rows(r1(30, 26, 35), r1(20, 15, 25)))
    assert "within the noise" in readings.recipe(rows(r1(28, 23, 33), r1(30, 25, 35)))
    assert "should move there" in readings.recipe(rows(r1(10, 5, 15), r1(30, 25, 35)))


def test_loss_curves_flag_a_model_still_learning():
    flat = [{"epoch": e / 4, "loss": 1.0} for e in range(1, 13)]
    falling = [{"epoch": e / 4, "loss": 3.0 / e} for e in range(1, 13)]
    text = readings.loss_curves({("t2i", "SemCORE"): flat, ("t2i", "RQ"): falling})
    assert "Still falling" in text and "RQ (T2I)" in text and "SemCORE (T2I)" not in text.split("Still")[1]
    assert "flattened" in readings.loss_curves({("t2i", "SemCORE"): flat})


def test_diagnostics_list_collapsed_and_unmemorised_models():
    ok = {"collapsed": False, "indexing_accuracy": 97.5, "final_loss": 0.1, "uniform_loss": 1.5}
    bad = {"collapsed": True, "indexing_accuracy": 40.0, "final_loss": 1.45, "uniform_loss": 1.5}
    text = readings.diagnostics({("t2i", "SemCORE"): ok, ("i2t", "SemCORE"): bad})
    assert "1 of 2 models" in text and "SemCORE (I2T) 40 %" in text
    assert "Collapsed (under half the possible distinct top-1 identifiers): SemCORE (I2T)" in text
    assert "within 10 % of a uniform guess: SemCORE (I2T)" in text
    assert "Collapsed (under half the possible distinct top-1 identifiers): none." in \
        readings.diagnostics({("t2i", "SemCORE"): ok})


def test_beams_tell_a_real_change_from_noise():
    rows = lambda last: pd.DataFrame([{"direction": "t2i", "beam": 10, **r1(20, 15, 25)},  # noqa: E731
                                      {"direction": "t2i", "beam": 50, **last}])
    assert "within the intervals" in readings.beams(rows(r1(22, 17, 27)))
    assert "the beam matters (best at 50)" in readings.beams(rows(r1(40, 35, 45)))
    by_k = pd.DataFrame([{"direction": "t2i", "k": 5, **r1(20, 15, 25)}, {"direction": "t2i", "k": 10, **r1(40, 35, 45)}])
    assert "at k 10" in readings.by_k(by_k) and "the k matters" in readings.by_k(by_k)


def test_gsv_readings_name_gains_bias_and_cost():
    rows = pd.DataFrame([
        {"split": "validation", "direction": "t2i", "variant": "likelihood", "R@1 gain": 5.0, "gain lo": 1.0,
         "gain hi": 9.0, "position positions tested": 3, "position max deviation": 4.0, "position p": 0.6,
         "position biased": False},
        {"split": "validation", "direction": "t2i", "variant": "listwise (paper)", "R@1 gain": -6.0,
         "gain lo": -9.0, "gain hi": -2.0, "position positions tested": 3, "position max deviation": 30.0,
         "position p": 0.001, "position biased": True}])
    text = readings.gsv_formats(rows)
    assert "raises R@1 beyond its paired interval: likelihood +5.0; lowers it: listwise (paper) -6.0" in text
    assert "listwise (paper) (validation, T2I: up to 30.0 points off" in readings.positions(rows)
    assert "in none" in readings.positions(rows.iloc[:1])
    assert "nothing to test" in readings.positions(rows.assign(**{"position positions tested": 1}))
    rotated = rows.assign(**{"rotated positions tested": [10, None], "rotated max deviation": [2.0, None],
                             "rotated p": [0.9, None], "rotated biased": [False, None]})
    assert "Shown in every rotation (the format in use, test): tested in 1 of 2 runs; in none" in readings.positions(rotated)
    cost = pd.DataFrame({"GSV ms/query": [10.0, 30.0], "GSV / decoding": [0.5, 1.5]})
    assert "0.5× to 1.5×" in readings.cost(cost)


def test_ceilings_and_the_fraction_reached():
    ceilings = pd.DataFrame([
        {"identifier text": "SemCORE", "MiniLM R@1": 30.0, "BM25 R@1": 20.0},
        {"identifier text": "Long SID", "MiniLM R@1": 40.0, "BM25 R@1": 28.0},
        {"identifier text": "full source text (heldout caption)", "MiniLM R@1": 49.5, "BM25 R@1": 28.5}])
    text = readings.ceilings(ceilings)
    assert "richest identifier is Long SID (MiniLM R@1 40.0" in text and "gives 49.5" in text
    assert "SemCORE's SID holds 30.0" in text
    fraction = pd.DataFrame([{"method": "SemCORE", "% of ceiling": 80.0},
                             {"method": "GRACE (Numeric ID)", "% of ceiling": None},
                             {"method": "Long SID", "% of ceiling": 105.0}])
    text = readings.ceiling_fraction(fraction)
    assert "80 % (SemCORE) to 105 % (Long SID)" in text and "Above 100 %: Long SID" in text


def test_grid_backbones_and_cases():
    grid = pd.DataFrame([{"cluster_size": 8, "lexical_length": 2, **r1(10, 5, 15)},
                         {"cluster_size": 32, "lexical_length": 4, **r1(30, 25, 35)}])
    text = readings.grid(grid, "cluster_size", "lexical_length", "clusters", "length")
    assert "Best: clusters 32, length 4" in text and "do not overlap" in text
    t4 = pd.DataFrame([{"backbone": "tiny", "method": "w/o GSV", **r1(30, 25, 35)},
                       {"backbone": "small", "method": "w/o GSV", **r1(10, 5, 15)}])
    assert "Below it beyond the intervals: small w/o GSV (10.0)" in readings.backbones(t4)
    assert readings.cases([True, False, True, False], "panels").startswith("2 of 4 panels")
    assert "3 of the 4 results" in readings.search(list("abcd"), ["x", "x", "y", "x"])


def test_grid_versus_own_reads_the_paired_difference_of_the_best_cell():
    from semcore import stats
    best = pd.Series({"direction": "t2i", "c": 32, "l": 4, **r1(22.7, 20.1, 25.3)})
    own = pd.Series({"direction": "t2i", "c": 128, "l": 4, **r1(19.1, 16.5, 21.4)})
    real = readings.grid_versus_own(best, own, stats.Difference(3.6, 1.2, 6.0, 0.004), 9, "c", "l", "K", "length")
    assert "(K 128, length 4, R@1 19.1 [16.5, 21.4]): +3.6 [+1.2, +6.0] points" in real
    assert "excludes 0" in real and "best of 9 cells" in real
    noise = readings.grid_versus_own(best, own, stats.Difference(3.6, -0.4, 7.0, 0.08), 9, "c", "l", "K", "length")
    assert "queries alone" in noise and "best of 9 cells being picked" in noise
    assert "is the best cell" in readings.grid_versus_own(own, own, None, 9, "c", "l", "K", "length")


def test_method_styles_colour_by_family_and_vary_the_line_within_it():
    styles = report.method_styles(["grace_numeric", "grace_atomic", "semcore", "wo_gsv", "ssi"])
    assert styles["grace_numeric"]["color"] == styles["grace_atomic"]["color"]
    assert styles["grace_numeric"]["linestyle"] != styles["grace_atomic"]["linestyle"]
    assert styles["semcore"]["color"] == styles["wo_gsv"]["color"] != styles["ssi"]["color"]
    assert report.setting_label("cluster_size") == "clusters of the global ID (K)"
    assert report.setting_label("tiny_hidden") == "tiny hidden"


def test_ties_are_read_as_ties():
    rows = pd.DataFrame([{"direction": "t2i", "label": "A", **r1(8.3, 2.1, 16.7)},
                         {"direction": "t2i", "label": "B", **r1(8.3, 2.1, 16.7)}])
    assert "every row at R@1 8.3" in readings.before_gsv(rows, {"t2i": 8.33})
    grid = pd.DataFrame([{"c": 2, "l": 2, **r1(8.3, 2.1, 16.7)}, {"c": 4, "l": 2, **r1(8.3, 2.1, 16.7)}])
    assert "separates nothing" in readings.grid(grid, "c", "l", "clusters", "length")


def test_seeds_says_whether_training_or_the_queries_move_r1_more():
    spread = pd.DataFrame([
        {"method": "SemCORE", "seeds": 3, "R@1 by seed": "10.0 / 20.0 / 30.0", "mean R@1": 20.0,
         "seed SD": 10.0, "seed range": 20.0, "bootstrap half-width": 3.9},
        {"method": "GRACE", "seeds": 3, "R@1 by seed": "5.0 / 5.5 / 5.0", "mean R@1": 5.2,
         "seed SD": 0.3, "seed range": 0.5, "bootstrap half-width": 3.9}])
    text = readings.seeds(spread)
    semcore, grace = text.split("GRACE:")
    assert "10.0 / 20.0 / 30.0" in semcore and "more than" in semcore and "SD 10.0" in semcore
    assert "less than" in grace and "bootstrap SD about 2.0" in grace
    one = spread.head(1).assign(seeds=1, **{"seed SD": float("nan")})
    assert readings.seeds(one) == "SemCORE: one training seed, so no spread to read."
