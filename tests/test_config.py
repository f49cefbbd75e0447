"""Parameters: every profile validates; typos and bad values are errors naming the key."""
import pytest

from semcore import config, paths


@pytest.mark.parametrize("profile", sorted(p.stem for p in paths.PARAMS.glob("*.yaml")))
def test_every_profile_loads(profile):
    p = config.load(paths.PARAMS / f"{profile}.yaml")
    assert p.profile == profile


def test_unknown_key_names_key_and_suggestion():
    with pytest.raises(config.ParamError, match=r"'beam_szie'.*'beam_size'.*Valid parameters"):
        config.from_dict({"beam_szie": 10})


@pytest.mark.parametrize("key,value", [("beam_size", 0), ("beam_size", "20"), ("epochs", 1.5),
                                       ("dataset", "flickr"), ("directions", ["t2i", "x"]),
                                       ("table1_methods", ["semcore", "semcor"]),
                                       ("learning_rate", -1.0), ("heldout_caption_index", 7),
                                       ("decode_score", "mean")])
def test_bad_values_name_the_key(key, value):
    with pytest.raises(config.ParamError, match=key):
        config.from_dict({key: value})


def test_yaml_must_be_flat(tmp_path):
    f = tmp_path / "x.yaml"
    f.write_text("profile: x\nnested: {a: 1}\n")
    with pytest.raises(config.ParamError, match="flat"):
        config.load(f)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(config.ParamError, match="not found"):
        config.load(tmp_path / "nope.yaml")


def test_unset_path_variable_is_named(monkeypatch):
    monkeypatch.delenv("SEMCORE_NOWHERE", raising=False)
    p = config.Params(data_path="$SEMCORE_NOWHERE/flickr8k")
    with pytest.raises(config.ParamError, match="data_path"):
        p.resolved_path("data_path")


def test_path_defaults_and_repo_relative(monkeypatch):
    p = config.Params(data_path="${SEMCORE_TEST_DATA:-../shared/data/flickr8k}")
    monkeypatch.delenv("SEMCORE_TEST_DATA", raising=False)
    assert p.resolved_path("data_path") == config.paths.REPO / "../shared/data/flickr8k"
    monkeypatch.setenv("SEMCORE_TEST_DATA", "/data/f8k")
    assert p.resolved_path("data_path") == config.paths.REPO / "/data/f8k" == config.Path("/data/f8k")


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_resolves_to_what_this_machine_runs_natively(monkeypatch, native):
    """auto becomes bf16 only where bf16 is native (emulated bf16 is ~20x slower than fp32 on an
    AVX2 CPU), and the resolved value is what keys and tables see."""
    monkeypatch.setattr(config, "native_bf16", lambda: native)
    p = config.Params(precision="auto")
    assert p.precision == ("bf16" if native else "fp32")
    assert p.to_dict()["precision"] == p.precision == p.replace(seed=1).precision
