"""Prior videos sampled from V are never labelled with the customization's identifier (issue 13)."""

import pytest

from stillmoving.errors import StillMovingError
from stillmoving.training.config import CustomizeConfig
from stillmoving.training.spatial_stage import prior_prompt_list, train_spatial_adapters, without_identifier


def config(tmp_path, **kw) -> CustomizeConfig:
    """A customization with the paper's prior term on (customize's default has none)."""
    return CustomizeConfig(
        model=str(tmp_path / "no-such-model"),
        output=str(tmp_path / "out"),
        motion_adapter="x",
        prompt=["a sks dog", "a sks dog on a beach"],
        **{"prior_loss_weight": 1.0, **kw},
    )


def test_without_identifier_drops_whole_words_only():
    assert without_identifier("a sks dog", "sks") == "a dog"
    assert without_identifier("a SKS dog on a beach", "sks") == "a dog on a beach"
    assert without_identifier("a house in crayon style", "in crayon style") == "a house"
    assert without_identifier("a sksdog", "sks") == "a sksdog"


def test_prior_prompts_are_derived_by_dropping_the_identifier(tmp_path):
    assert prior_prompt_list(config(tmp_path, identifier="sks")) == ["a dog", "a dog on a beach"]


def test_given_prior_prompts_win(tmp_path):
    assert prior_prompt_list(config(tmp_path, identifier="sks", prior_prompt=["a cat"])) == ["a cat"]


def test_without_prior_prompts_or_identifier_it_refuses_instead_of_using_the_instance_prompt(tmp_path):
    with pytest.raises(StillMovingError, match="--identifier"):
        prior_prompt_list(config(tmp_path))


@pytest.mark.parametrize("prior", ["a sks dog", "a sks dog running"])
def test_prior_prompts_naming_the_customization_are_refused(tmp_path, prior):
    with pytest.raises(StillMovingError, match="names the customization"):
        prior_prompt_list(config(tmp_path, identifier="sks", prior_prompt=[prior]))


def test_customize_refuses_before_loading_any_model(tmp_path):
    # the model path does not exist: reaching the loader would raise a different error
    with pytest.raises(StillMovingError, match="prior videos sampled from the video model need prompts"):
        train_spatial_adapters(config(tmp_path))
    assert not (tmp_path / "out").exists()


def test_impossible_numbers_are_refused_before_loading_nan_too(tmp_path):
    for key in ("image_guidance_scale", "prior_loss_weight"):
        with pytest.raises(StillMovingError, match=f"--{key.replace('_', '-')} must be at least 0, not nan"):
            train_spatial_adapters(config(tmp_path, **{key: float("nan")}))
    assert not (tmp_path / "out").exists()


def test_no_prior_preservation_needs_no_prior_prompts(tmp_path):
    cfg = config(tmp_path, prior_loss_weight=0.0)
    with pytest.raises(StillMovingError) as error:
        train_spatial_adapters(cfg)  # gets past the prior check to the (missing) model
    assert "no-such-model" in str(error.value)


def test_cli_refuses_a_prior_prompt_with_the_identifier_in_one_line(tmp_path, capsys, monkeypatch):
    from test_cli import run

    code, _, err = run(
        capsys,
        monkeypatch,
        "customize",
        "--model",
        tmp_path / "no-such-model",
        "-o",
        tmp_path / "out",
        "--motion-adapter",
        "x",
        "--prompt",
        "a sks dog",
        "--identifier",
        "sks",
        "--prior-prompt",
        "a sks dog on grass",
        "--prior-loss-weight",
        "1",
    )
    assert (code, err.strip().splitlines()) == (
        2,
        [
            "error: prior prompt 'a sks dog on grass' names the customization; "
            "prior videos show the un-customized model, so their prompts must "
            "not (e.g. 'a dog' for 'a sks dog')"
        ],
    )
    assert list(tmp_path.iterdir()) == []
