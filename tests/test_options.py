"""One vocabulary: every training verb's options are its config's fields, a --config file uses the options' names,
and the names older versions used are refused with the new one named (issue 14, item 1)."""

import json

import pytest
import typer
from test_cli import run

from stillmoving import cli
from stillmoving.training.config import (
    CustomizeConfig,
    DreamBoothConfig,
    MotionAdapterConfig,
    StyleLoRAConfig,
    cli_options,
    current_keys,
)

VERBS = [
    (["motion-adapter", "train"], MotionAdapterConfig),
    (["customize"], CustomizeConfig),
    (["t2i", "dreambooth"], DreamBoothConfig),
    (["t2i", "lora"], StyleLoRAConfig),
]


def click_command(verb: list[str]):
    command = typer.main.get_command(cli.app)
    for word in verb:
        command = command.commands[word]
    return command


@pytest.mark.parametrize("verb,cls", VERBS, ids=[" ".join(v) for v, _ in VERBS])
def test_each_option_is_a_config_field_of_the_same_name_with_its_help(verb, cls):
    params = {p.name: p for p in click_command(verb).params}
    fields = {o["name"]: o for o in cli_options(cls)}
    assert set(params) == set(fields) | {"config"}
    for name, option in fields.items():
        assert params[name].opts[0] == "--" + name.replace("_", "-")
        assert params[name].help.startswith(option["help"]) and option["help"]
    assert params["output"].opts == ["--output", "-o"]
    assert params["gradient_checkpointing"].secondary_opts == ["--no-gradient-checkpointing"]


def test_the_shared_options_are_written_once():
    """`--steps` means the same field, with the same help, in every verb (defaults may differ)."""
    helps = {" ".join(verb): {o["name"]: o["help"] for o in cli_options(cls)} for verb, cls in VERBS}
    for name in ("steps", "lr", "checkpoint_every", "batch_size", "grad_accum", "resume", "report_to"):
        assert len({h[name] for h in helps.values()}) == 1, name
    assert helps["motion-adapter train"]["validation_every"] == helps["customize"]["validation_every"]


def test_a_config_in_the_options_names_runs_customize(tiny_dir, tmp_path, stage2_inputs, capsys, monkeypatch):
    config = {
        "model": str(tiny_dir),
        "output": str(tmp_path / "out"),
        "motion_adapter": str(stage2_inputs["motion_adapter"]),
        "customized": str(stage2_inputs["customized"]),
        "prompt": ["a sks dog"],
        "identifier": "sks",
        "num_images": 1,
        "num_prior_videos": 1,
        "prior_loss_weight": 1.0,
        "spatial_rank": 2,
        "num_frames": 4,
        "height": 32,
        "width": 32,
        "sample_steps": 2,
        "steps": 3,
        "lr": 0.0003,
        "checkpoint_every": 1,
        "batch_size": 1,
        "grad_accum": 1,
        "num_validation_videos": 0,
    }
    (tmp_path / "run.json").write_text(json.dumps(config))
    code, _, err = run(capsys, monkeypatch, "customize", "--config", tmp_path / "run.json", "--steps", "2")
    assert code == 0, err
    record = json.loads((tmp_path / "out/customize_run.json").read_text())
    assert record["config"]["steps"] == 2 and len(record["losses"]) == 2  # the option given overrides the file
    assert record["config"]["lr"] == 0.0003 and record["config"]["prompt"] == ["a sks dog"]
    assert sorted(p.name for p in (tmp_path / "out/checkpoints").iterdir()) == ["checkpoint-1", "checkpoint-2"]


OLD_KEYS = [
    (
        ["customize"],
        {"max_train_steps": 2, "learning_rate": 1e-3, "prompts": ["a sks dog"]},
        "error: config key 'max_train_steps' is now 'steps' (the --steps option); config key 'learning_rate' is now "
        "'lr' (the --lr option); config key 'prompts' is now 'prompt' (the --prompt option): a config uses the "
        "command's option names",
    ),
    (
        ["motion-adapter", "train"],
        {"motion_rank": 4, "checkpointing_steps": 1},
        "error: config key 'checkpointing_steps' is now 'checkpoint_every' (the --checkpoint-every option); config key "
        "'motion_rank' is now 'rank' (the --rank option): a config uses the command's option names",
    ),
    (
        ["t2i", "dreambooth"],
        {"output_dir": "x", "instance_prompt": "a sks dog", "train_batch_size": 2},
        "error: config key 'output_dir' is now 'output' (the --output option); config key 'train_batch_size' is now "
        "'batch_size' (the --batch-size option); config key 'instance_prompt' is now 'prompt' (the --prompt option): "
        "a config uses the command's option names",
    ),
]


@pytest.mark.parametrize("verb,old,message", OLD_KEYS, ids=[" ".join(v) for v, _, _ in OLD_KEYS])
def test_old_config_keys_are_one_error_naming_the_new_key(tiny_dir, tmp_path, capsys, monkeypatch, verb, old, message):
    (tmp_path / "old.json").write_text(json.dumps({"model": str(tiny_dir), **old}))
    code, out, err = run(capsys, monkeypatch, *verb, "-o", tmp_path / "out", "--config", tmp_path / "old.json")
    assert (code, err.strip().splitlines()) == (2, [message])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]  # nothing written


def test_a_batch_list_with_old_keys_is_refused(tmp_path, capsys, monkeypatch):
    (tmp_path / "runs.json").write_text(json.dumps([{"model": "m", "output_dir": str(tmp_path / "a")}]))
    code, _, err = run(capsys, monkeypatch, "customize-batch", tmp_path / "runs.json")
    assert (code, err.strip().splitlines()) == (
        2,
        [
            "error: config key 'output_dir' is now 'output' (the --output option): a config uses the command's "
            "option names"
        ],
    )


def test_a_missing_required_option_names_its_flag(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "t2i", "lora", "--model", "m", "-o", tmp_path / "out")
    assert (code, err.strip().splitlines()) == (2, ["error: incomplete StyleLoRAConfig: missing --images"])


def test_old_run_records_are_read_in_todays_names():
    """A run record written before the rename (its "config") reads as today's config; a config file may not."""
    saved = {"model": "m", "output_dir": "o", "max_train_steps": 3, "prompts": ["a sks dog"], "loras": [["x", 0.5]]}
    values = current_keys(CustomizeConfig, saved)
    assert values == {"model": "m", "output": "o", "steps": 3, "prompt": ["a sks dog"], "lora": [["x", 0.5]]}
    cfg = CustomizeConfig(**values)
    assert (cfg.steps, cfg.output, cfg.lora) == (3, "o", [("x", 0.5)])
    assert current_keys(MotionAdapterConfig, {"motion_rank": 4, "rank": 2}) == {"rank": 2}  # today's name wins
    assert current_keys(StyleLoRAConfig, {"rank": 4}) == {"rank": 4}


def test_a_run_folder_of_an_older_version_resumes(tiny_dir, tmp_path, capsys, monkeypatch):
    """--resume reads accelerate's checkpoint, never the saved config: an old record in the folder does not matter."""
    args = ["motion-adapter", "train", "--model", tiny_dir, "-o", tmp_path / "run", "--sample-prompt", "a red circle"]
    small = ["--num-sampled-videos", "1", "--rank", "2", "--num-frames", "4", "--height", "32", "--width", "32"]
    small += ["--sample-steps", "2", "--checkpoint-every", "1"]
    assert run(capsys, monkeypatch, *args, *small, "--steps", "1")[0] == 0
    record_file = tmp_path / "run/motion_adapter_run.json"
    record = json.loads(record_file.read_text())
    old = {"output_dir": record["config"].pop("output"), "max_train_steps": record["config"].pop("steps")}
    record_file.write_text(json.dumps({**record, "config": {**record["config"], **old}}))
    code, _, err = run(capsys, monkeypatch, *args, *small, "--steps", "2", "--resume")
    assert code == 0, err
    record = json.loads(record_file.read_text())
    assert record["start_step"] == 1 and len(record["losses"]) == 1 and record["config"]["steps"] == 2
