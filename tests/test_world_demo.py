"""`stillmoving demo --quick` end to end on the shipped world: every variant, the sweep, claims.json, the page.

Quick mode trains for a few steps only, so its figures say little; the full demo's table is in the README.
"""

import json
import re
from dataclasses import replace

import pytest
from html_tree import parse, rows
from test_cli import run
from test_readme_tables import check_readme_tables

from stillmoving.training.config import CustomizeConfig
from stillmoving.world.claims import FAILS, HOLDS, UNJUDGED
from stillmoving.world.conditional import NAIVE_CONTROL, OURS_CONTROL, PROMPT_ALONE, REFERENCE
from stillmoving.world.legend import DEMO_METRICS
from stillmoving.world.phases import image_prompts
from stillmoving.world.synthetic import SceneSpec

VARIANTS = [
    "base T2V",
    "customized T2I (image)",
    "naive injection",
    "weight interpolation",
    "no motion adapter",
    "with the paper's prior videos",
    "Still-Moving",
]
SWEEP = "motion scale (base T2V + motion adapter)"
CONDITIONAL = "star + ControlNet"
CONDITIONAL_VARIANTS = [v.label for v in (REFERENCE, PROMPT_ALONE, NAIVE_CONTROL, OURS_CONTROL)]


def check_conditional_section(quick_report):
    """Per customization, on the first video model: videos that follow reference silhouettes along a diagonal and a
    curved path (2 prompts x 2 tracks), scored for the track and the look, with the paired difference."""
    record = json.loads((quick_report / "metrics.json").read_text())
    variants = record["sections"][CONDITIONAL]
    assert list(variants) == CONDITIONAL_VARIANTS
    assert all(v["seeds"] == [0, 1, 0, 1] for v in variants.values())
    for name in CONDITIONAL_VARIANTS[1:]:
        assert {"track_iou", "track_distance", "fidelity", "consistency"} <= set(variants[name]["summary"])
    assert variants[REFERENCE.label]["summary"]["track_distance"]["mean"] == 0  # the references against themselves
    gap = json.loads((quick_report / "claims.json").read_text())["still_moving_minus_naive"][CONDITIONAL]
    assert gap["track_iou"]["n"] == 4
    assert "track_iou" in (quick_report / "index.html").read_text()


def test_quick_demo_writes_every_variant_the_claims_and_a_readable_page(tmp_path, capsys, monkeypatch):
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", "-o", tmp_path / "report")
    assert code == 0, err
    report = tmp_path / "report"
    record = json.loads((report / "metrics.json").read_text())
    # Both shipped video models: the AnimateDiff-like one's sections by the customization's name, the jointly
    # trained one's with "(joint V)"; each with every variant and its own motion-scale sweep.
    assert list(record["sections"]) == ["star", SWEEP, "star (joint V)", f"{SWEEP} (joint V)", CONDITIONAL]
    for scope in ("star", "star (joint V)"):
        variants = record["sections"][scope]
        # delta injection, V + (M1 - M), only where V's spatial layers are not M: on the first model it is naive
        expected = VARIANTS[:4] + ["delta injection"] * (scope != "star") + VARIANTS[4:]
        assert list(variants) == expected
        assert all(v["seeds"] == [0, 1, 0, 1] for v in variants.values())  # 2 prompts x 2 seeds, paired
    assert record["motion_scale_sweep"]["alpha"] == [-1.0, 0.0, 1.0]
    for sweep in (SWEEP, f"{SWEEP} (joint V)"):
        assert list(record["sections"][sweep]) == ["alpha -1", "alpha 0", "alpha 1"]

    found = json.loads((report / "claims.json").read_text())
    assert [m["name"] for m in found["video_models"]] == ["animatediff", "joint"]
    for scope, sweep in (("star", "motion scale"), ("star (joint V)", "motion scale (joint V)")):
        claims = found["claims"][scope]
        assert set(claims) == {
            "better_than_naive",
            "fidelity_kept",
            "motion_kept",
            "no_motion_adapter_static",
            "no_worse_than_naive",
        }
        monotone = found["claims"][sweep]["monotone"]
        assert all(c["verdict"] in (HOLDS, FAILS, UNJUDGED) for c in [*claims.values(), monotone])
        gap = found["still_moving_minus_naive"][scope]
        assert set(gap) == {m.key for m in DEMO_METRICS} and all(i["n"] == 4 for i in gap.values())
    assert len(found["verdicts"]) == 12 and found["timings_s"]["total"] > 0
    # the terminal: the counts of claims.json's verdicts, each claim that does not hold, then where the page is
    every = [c for section in found["claims"].values() for c in section.values()]
    counts = {v: sum(c["verdict"] == v for c in every) for v in (HOLDS, FAILS, UNJUDGED)}
    summary = ", ".join(f"{n} {v}" for v, n in counts.items()) + " (the paper's claims, judged):"
    said = " ".join(err.split())
    assert summary in said and sum(counts.values()) == 12 and said.count("does not hold: ") == counts[FAILS]
    assert said.index(summary) < said.index("report written to")

    page = parse((report / "index.html").read_text())
    assert not re.search(r"\bnan\b", page.text(), re.IGNORECASE)
    assert len(page.all("ul", "verdicts")[0].all("li")) == 12 and page.all("table", "legend")
    for i, columns in ((0, VARIANTS), (2, VARIANTS[:4] + ["delta injection"] + VARIANTS[4:])):  # star, star (joint V)
        grid = rows(page.all("table", "grid")[i])
        assert [c.text().split(" one still")[0] for c in grid[0][1:]] == columns and len(grid) == 1 + 4
    assert (report / "motion_vs_alpha.png").is_file()
    # video variants (delta injection too on the jointly trained model), then alphas, on both models; then the
    # conditional section's references and 3 variants
    assert len(list((report / "videos").glob("*.gif"))) == (6 * 4 + 3 * 4) + (7 * 4 + 3 * 4) + 4 * 4
    assert len(list((report / "videos").glob("*.png"))) == 2 * 4  # the customized T2I's stills
    assert "demo: [star] Still-Moving" in err and "demo: [star (joint V)] Still-Moving" in err
    check_conditional_section(report)
    check_readme_tables(report, capsys)


def test_image_prompts_drop_motion_words():
    star = SceneSpec("star", "pink", "two_tone", "left", "quickly", "gray", 0.3, (0.5, 0.5), subject="star")
    circle = SceneSpec("circle", "red", "plain", "up", "slowly", "dusk", 0.3, (0.5, 0.5), style="crayon")
    assert image_prompts([star, circle]) == [
        "a sks star on a gray background",
        "a red circle on a dusk background in crayon style",
    ]


def test_demo_32_paired_videos_per_variant_full_sweeps_as_many_with_customize_s_recipe(tmp_path, capsys, monkeypatch):
    from stillmoving.world import demo

    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or tmp_path / "index.html")
    for args in ([], ["--full"]):
        code, _, err = run(capsys, monkeypatch, "demo", *args, "-o", tmp_path / "report")
        assert code == 0, err
    default, full = seen
    assert default.eval_prompts * default.seeds == 32  # issue 13: at least 32 videos per variant, paired
    assert default.sweep_prompts * default.sweep_seeds == 12 and full.sweep_prompts * full.sweep_seeds == 32
    # --full: the same sections and videos, with customize's own training recipe in every trained variant
    assert (full.spatial_steps, full.spatial_lr) == (CustomizeConfig.steps, CustomizeConfig.lr) != (120, 1e-3)
    assert (default.spatial_steps, default.spatial_lr) == (120, 1e-3)
    # and the drift study's style at a weight below the main section's too, which the default's 15 minutes leave out
    assert default.drift_weights == (1.0, 2.0) and full.drift_weights == (0.5, 1.0, 2.0)
    sizes = dict(sweep_prompts=default.sweep_prompts, sweep_seeds=default.sweep_seeds)
    assert replace(full, **sizes, spatial_steps=120, spatial_lr=1e-3, drift_weights=(1.0, 2.0)) == default
    assert "8 prompts x 4 seeds = 32 videos" in demo.demo_notes(default)
    assert "4 base-world prompts x 3 seeds per alpha" in demo.demo_notes(default)
    code, _, err = run(capsys, monkeypatch, "demo", "--full", "--quick", "-o", tmp_path / "report")
    assert code == 2 and err.count("error:") == 1 and "choose one" in err and len(seen) == 2


def test_demo_frame_agreement_reaches_every_trained_variant(tmp_path, capsys, monkeypatch):
    from stillmoving.world import demo, phases

    seen, runs = [], []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or tmp_path / "index.html")
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", "--frame-agreement", "10", "-o", tmp_path / "report")
    assert code == 0, err
    assert seen[0].frame_agreement == 10.0 and demo.DemoConfig().frame_agreement == 0.0  # the paper's by default
    monkeypatch.setattr(phases, "train_spatial_adapters", lambda cfg: runs.append(cfg) or "adapters")
    phases.spatial_run(seen[0], {"customized": None, "loras": []}, ["a red circle"], tmp_path / "run", lr=1e-3)
    assert runs[0].frame_agreement == 10.0 and runs[0].lr == 1e-3


def test_demo_objective_options_reach_every_trained_variant(tmp_path, capsys, monkeypatch):
    from stillmoving.world import demo, phases

    seen, runs = [], []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or tmp_path / "index.html")
    args = ["demo", "--quick", "--frozen-target", "t2i", "--prior-loss", "video", "--prior-loss-weight", "0.5"]
    code, _, err = run(capsys, monkeypatch, *args, "--image-guidance-scale", "4", "-o", tmp_path / "report")
    assert code == 0, err
    given = (seen[0].frozen_target, seen[0].prior_loss, seen[0].prior_loss_weight, seen[0].image_guidance_scale)
    assert given == ("t2i", "video", 0.5, 4.0)
    ours, theirs = demo.DemoConfig(), CustomizeConfig(model="m", output="o")  # the demo runs customize's defaults
    for key in ("frozen_target", "prior_loss", "prior_loss_weight", "image_guidance_scale"):
        assert getattr(ours, key) == getattr(theirs, key), key
    assert (theirs.frozen_target, theirs.prior_loss_weight, theirs.image_guidance_scale) == ("noise", 0.0, 1.0)
    monkeypatch.setattr(phases, "train_spatial_adapters", lambda cfg: runs.append(cfg) or "adapters")
    phases.spatial_run(seen[0], {"customized": None, "loras": []}, ["a red circle"], tmp_path / "run")
    assert (runs[0].frozen_target, runs[0].prior_loss, runs[0].prior_loss_weight, runs[0].image_guidance_scale) == given
    assert phases.prior_ablation(seen[0])[2] == {"prior_loss_weight": 0.0}  # Still-Moving has a prior: removed
    assert phases.prior_ablation(ours)[2] == {"prior_loss_weight": 1.0, "prior_loss": "video"}  # none: the paper's
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", "--frozen-target", "image", "-o", tmp_path / "r2")
    assert code == 2 and err.count("error:") == 1 and "--frozen-target must be one of" in err and len(seen) == 1


def test_demo_guidance_scale_reaches_every_generation(tmp_path, capsys, monkeypatch):
    from stillmoving.world import demo, phases

    seen, runs = [], []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or tmp_path / "index.html")
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", "--guidance-scale", "2", "-o", tmp_path / "report")
    assert code == 0, err
    assert seen[0].guidance_scale == 2.0 and demo.DemoConfig().guidance_scale == 4.0
    assert "guidance 2 (the customized T2I's images too)" in demo.demo_notes(seen[0])  # the report says so
    monkeypatch.setattr(phases, "train_spatial_adapters", lambda cfg: runs.append(cfg) or "adapters")
    phases.spatial_run(seen[0], {"customized": None, "loras": []}, ["a red circle"], tmp_path / "run")
    assert runs[0].guidance_scale == 2.0  # customize's prior and validation videos too
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", "--guidance-scale", "-1", "-o", tmp_path / "r2")
    assert code == 2 and err.count("error:") == 1 and "--guidance-scale" in err and len(seen) == 1


def test_demo_spatial_rank_reaches_every_trained_variant_and_the_report(tmp_path, capsys, monkeypatch):
    from stillmoving.world import demo, phases

    seen, runs = [], []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or tmp_path / "index.html")
    code, _, err = run(capsys, monkeypatch, "demo", "--full", "--spatial-rank", "1", "-o", tmp_path / "report")
    assert code == 0, err
    assert seen[0].spatial_rank == 1 and demo.DemoConfig().spatial_rank == CustomizeConfig.spatial_rank == 8
    assert "500 steps at lr 0.0001 of rank-1 adapters" in demo.demo_notes(seen[0])  # --full
    monkeypatch.setattr(phases, "train_spatial_adapters", lambda cfg: runs.append(cfg) or "adapters")
    phases.spatial_run(seen[0], {"customized": None, "loras": []}, ["a red circle"], tmp_path / "run")
    assert runs[0].spatial_rank == 1
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", "--spatial-rank", "0", "-o", tmp_path / "r2")
    assert code == 2 and err.count("error:") == 1 and "--spatial-rank must be at least 1" in err and len(seen) == 1


def test_demo_spatial_steps_and_lr_are_customize_s_and_keep_each_size_s_own_unless_given(tmp_path, capsys, monkeypatch):
    from stillmoving.world import demo, phases

    seen, runs = [], []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or tmp_path / "index.html")
    monkeypatch.setattr(phases, "train_spatial_adapters", lambda cfg: runs.append(cfg) or "adapters")
    for size in (["--quick"], [], ["--full"]):  # the default's fast recipe; --full: customize's own
        assert run(capsys, monkeypatch, "demo", *size, "-o", tmp_path / "report")[0] == 0
    given = ("--spatial-steps", "250", "--spatial-lr", "2e-4")
    assert run(capsys, monkeypatch, "demo", "--quick", *given, "-o", tmp_path / "report")[0] == 0
    assert run(capsys, monkeypatch, "demo", "--full", "--spatial-lr", "3e-4", "-o", tmp_path / "report")[0] == 0
    steady = (CustomizeConfig.steps, CustomizeConfig.lr)
    expected = [(6, 1e-3), (120, 1e-3), steady, (250, 2e-4), (steady[0], 3e-4)]
    assert [(c.spatial_steps, c.spatial_lr) for c in seen] == expected and steady == (500, 1e-4)
    assert "500 steps at lr 0.0001 of rank-8 adapters" in demo.demo_notes(seen[2])
    assert "250 steps at lr 0.0002 of rank-8 adapters" in demo.demo_notes(seen[3])
    phases.spatial_run(seen[3], {"customized": None, "loras": []}, ["a red circle"], tmp_path / "run")
    assert (runs[0].steps, runs[0].lr) == (250, 2e-4)
    for bad, message in (
        (("--spatial-steps", "0"), "must be at least 1"),
        (("--spatial-lr", "0"), "must be a positive number"),
    ):
        code, _, err = run(capsys, monkeypatch, "demo", "--quick", *bad, "-o", tmp_path / "r2")
        assert code == 2 and err.count("error:") == 1 and f"{bad[0]} {message}" in err and len(seen) == 5


@pytest.mark.parametrize(
    "flag, given, note, bad, message, default, customize_field",
    [
        ("--snr-gamma", 0.1, "min-SNR-0.1 loss weighting", "-1", "--snr-gamma must be at least 0", None, None),
        (
            "--reencode-images",
            0.5,
            "50% of M1's images decoded and encoded again",
            "2",
            "--reencode-images is a share, at most 1, not 2.0",
            0.0,
            None,
        ),
        (
            "--spatial-blocks",
            "down,mid",
            "adapters in the UNet's down,mid blocks only",
            "up,left",
            "--spatial-blocks 'up,left': give one or more of down, mid, up",
            "down,mid,up",
            None,
        ),
        # customize's own --seed; the demo's --seed (0) stays everything else's
        ("--spatial-seed", 3, "adapters trained with seed 3", "-1", "--spatial-seed must be at least 0", 0, "seed"),
    ],
)
def test_a_demo_training_option_reaches_every_trained_variant_and_the_report(
    tmp_path, capsys, monkeypatch, flag, given, note, bad, message, default, customize_field
):
    from stillmoving.world import demo, phases

    field = flag.removeprefix("--").replace("-", "_")
    seen, runs = [], []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or tmp_path / "index.html")
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", flag, str(given), "-o", tmp_path / "report")
    assert code == 0, err
    assert getattr(seen[0], field) == given and note in demo.demo_notes(seen[0])
    assert note not in demo.demo_notes(demo.DemoConfig())
    monkeypatch.setattr(phases, "train_spatial_adapters", lambda cfg: runs.append(cfg) or "adapters")
    phases.spatial_run(seen[0], {"customized": None, "loras": []}, ["a red circle"], tmp_path / "run")
    phases.spatial_run(demo.DemoConfig(), {"customized": None, "loras": []}, ["a red circle"], tmp_path / "run")
    field = customize_field or field
    assert getattr(runs[0], field) == given and getattr(runs[1], field) == getattr(CustomizeConfig, field) == default
    code, _, err = run(capsys, monkeypatch, "demo", "--quick", flag, bad, "-o", tmp_path / "r2")
    assert code == 2 and err.count("error:") == 1 and message in err and len(seen) == 1


def test_demo_generate_spatial_blocks_reaches_every_trained_variant_s_videos(tmp_path, capsys, monkeypatch):
    from stillmoving.world import demo, phases
    from stillmoving.world.claims import OURS

    seen, built = [], []
    monkeypatch.setattr(demo, "run_demo", lambda cfg: seen.append(cfg) or tmp_path / "index.html")
    args = ["demo", "--quick", "--generate-spatial-blocks", "down,mid", "-o", tmp_path / "report"]
    code, _, err = run(capsys, monkeypatch, *args)
    assert code == 0, err
    cfg = seen[0]
    assert cfg.generate_spatial_blocks == "down,mid" and cfg.spatial_blocks == "down,mid,up"
    assert "videos made with the adapters of the UNet's down,mid blocks only" in demo.demo_notes(cfg)
    assert "videos made with" not in demo.demo_notes(demo.DemoConfig())
    monkeypatch.setattr(phases, "spatial_run", lambda *a, **k: "adapters.safetensors")
    monkeypatch.setattr(phases, "assemble_pipeline", lambda *a, **k: built.append(k) or "pipe")
    monkeypatch.setattr(phases, "generate", lambda *a, **k: "videos")
    monkeypatch.setattr(phases, "score", lambda variant, *a: variant)
    m1 = {"customized": None, "loras": []}
    phases.trained_variant(cfg, "star", tmp_path, None, cfg.model, (OURS, "", {}), m1)
    phases.drift_variants(cfg, "crayon", 2.0, tmp_path, None, m1)
    assert [k.get("spatial_blocks") for k in built if k.get("spatial_adapters")] == ["down,mid", "down,mid"]
    code, _, err = run(
        capsys, monkeypatch, "demo", "--quick", "--generate-spatial-blocks", "left", "-o", tmp_path / "x"
    )
    assert code == 2 and err.count("error:") == 1 and "--generate-spatial-blocks 'left'" in err and len(seen) == 1


@pytest.mark.parametrize("recorded, generate_blocks", [("down,mid", None), (None, None), ("down,mid", "down")])
def test_the_subject_drift_point_runs_customize_s_check_and_adds_its_recorded_blocks(
    tmp_path, monkeypatch, recorded, generate_blocks
):
    """The heavily drifted subject's point: customize with its own end-of-run check, then Still-Moving on every block
    and, where the check recorded blocks (and --generate-spatial-blocks does not fix them), on those only."""
    import json

    from stillmoving.world import demo, phases
    from stillmoving.world.claims import NAIVE, OURS, RECORDED, T2I
    from stillmoving.world.variants import Variant

    runs, built = [], []

    def spatial_run(cfg, m1, prompts, out, **changes):
        runs.append((m1, out, changes))
        out.mkdir(parents=True)
        record = {"spatial_adapters": "spatial_adapters.safetensors"} | (
            {"spatial_blocks": recorded} if recorded else {}
        )
        (out / "customization.json").write_text(json.dumps(record))
        return str(out / "spatial_adapters.safetensors")

    made = []
    monkeypatch.setattr(
        phases, "make_customized_t2i", lambda cfg, *a: made.append((cfg, a)) or {"customized": "m1", "loras": []}
    )
    monkeypatch.setattr(phases, "spatial_run", spatial_run)
    monkeypatch.setattr(phases, "assemble_pipeline", lambda *a, **k: built.append(k) or "pipe")
    monkeypatch.setattr(phases, "generate", lambda *a, **k: Variant("", ""))
    monkeypatch.setattr(phases, "t2i_reference", lambda *a: Variant("", ""))
    cfg = demo.DemoConfig(generate_spatial_blocks=generate_blocks, customization_images=3)
    rendered = phases.customization_images(cfg, "star", tmp_path / "own")  # what the star's own section renders
    variants = phases.subject_drift_variants(cfg, "star", 5e-4, tmp_path, None)
    ((m1_cfg, (target, images, t2i)),) = made
    assert target == "star" and m1_cfg.dreambooth_lr == 5e-4  # only the rate changes:
    assert m1_cfg.dreambooth_steps == cfg.dreambooth_steps
    assert (images, t2i) == (tmp_path / "drift_lr_0.0005" / "images", tmp_path / "drift_lr_0.0005" / "t2i")
    assert sorted(p.name for p in images.iterdir()) == sorted(p.name for p in rendered.iterdir())  # the same images
    assert all((images / p.name).read_bytes() == p.read_bytes() for p in rendered.iterdir() if p.is_file())
    ((m1, out, changes),) = runs
    assert m1 == {"customized": "m1", "loras": []} and out == tmp_path / "drift_lr_0.0005" / OURS.id
    assert changes == {"num_validation_videos": 8}  # customize's own check, as a user's run makes it
    adds = recorded is not None and generate_blocks is None
    assert [v.id for v in variants] == [T2I.id, NAIVE.id, OURS.id] + [RECORDED.id] * adds
    with_adapters = [k.get("spatial_blocks") for k in built if k.get("spatial_adapters")]
    assert with_adapters == [generate_blocks] + [recorded] * adds
    assert all(k["customized"] == "m1" for k in built)


def test_a_section_is_placed_after_the_one_it_follows():
    from stillmoving.world.demo import with_section

    assert list(with_section({"a": 1, "b": 2}, "a", "c", 3)) == ["a", "c", "b"]
    assert list(with_section({"a": 1}, "x", "c", 3)) == ["a", "c"]  # no such section: at the end


def test_the_quick_demo_skips_the_subject_drift_and_the_default_runs_it_on_a_subject():
    from stillmoving.world import demo, phases

    assert phases.subject_drift_lrs(demo.DemoConfig.quick()) == []
    assert phases.subject_drift_lrs(demo.DemoConfig()) == [5e-4]
    assert phases.subject_drift_lrs(demo.DemoConfig(targets=("crayon",))) == []  # no subject to drift
    assert phases.subject_drift_lrs(demo.DemoConfig(subject_drift_lrs=(5e-5, 5e-4))) == [5e-4]  # 5e-5: its section


def test_the_drift_study_s_phases_are_listed_first_and_the_controlnet_sections_last(tmp_path):
    """Ready tasks start in list order: the longest phases first, the short ones last, or a worker waits alone."""
    from stillmoving.world import demo

    cfg = demo.DemoConfig()
    gen = demo.Generation(cfg.num_frames, cfg.resolution, cfg.sample_steps, cfg.guidance_scale)
    names = [task.name for task in demo.Plan(cfg, demo.video_models(cfg), tmp_path, gen).tasks]
    first_section = min(i for i, name in enumerate(names) if "base T2V" in name)
    assert [name for name in names[:first_section] if name.startswith("[drift]")] == [
        "[drift] star DreamBooth at lr 0.0005",
        "[drift] crayon LoRA at weight 2",
    ]
    assert all("conditional generation" in name for name in names[-2:]) and len(names) == 24
