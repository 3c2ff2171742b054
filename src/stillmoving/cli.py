"""The `stillmoving` command line: it parses options and calls the library, nothing more."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stillmoving.errors import StillMovingError
from stillmoving.training.config import CustomizeConfig, DreamBoothConfig, MotionAdapterConfig, StyleLoRAConfig

# Library chatter (missing torchvision, dtype notes) is noise to a CLI user; progress bars stay.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")

app = typer.Typer(
    help="Still-Moving: customized text-to-video without customized video data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
motion_app = typer.Typer(help="Stage 1: the motion adapter (once per video model).", no_args_is_help=True)
app.add_typer(motion_app, name="motion-adapter")
t2i_app = typer.Typer(help="Make a customized T2I the way users do (DreamBooth, style LoRA).", no_args_is_help=True)
app.add_typer(t2i_app, name="t2i")
world_app = typer.Typer(help="The embedded synthetic world: render its videos and images.", no_args_is_help=True)
app.add_typer(world_app, name="world")
console = Console(stderr=True)

# Options of `generate` that name model files; the training verbs' options come from their configs' fields.
MotionModules = Annotated[
    str | None,
    typer.Option(
        help="AnimateDiff motion modules (folder, or an mm_sd_v15/v2/v3 "
        ".ckpt/.safetensors file), when --model is a base T2I."
    ),
]
ConfigDir = Annotated[
    str | None,
    typer.Option(
        help="Diffusers folder whose configs (and tokenizer) shape single files; default: the shipped SD1.5 configs."
    ),
]
DomainAdapter = Annotated[
    str | None,
    typer.Option(
        help="AnimateDiff v3 domain adapter (v3_sd15_adapter.ckpt, or a spatial LoRA in diffusers, peft or kohya "
        "layout) fused into the video model's spatial layers, PATH[:SCALE] (default: --customization's, else none)."
    ),
]
Customized = Annotated[
    str | None,
    typer.Option(
        help="Customized T2I: UNet or SD pipeline folder, or a single-file "
        "checkpoint (DreamBooth, civitai; .safetensors/.ckpt)."
    ),
]
BaseT2I = Annotated[
    str | None,
    typer.Option(
        help="Delta injection: the T2I the customization was made from (e.g. SD1.5), for a video model whose spatial "
        "layers trained further on videos (jointly trained, or a domain adapter): the customization goes in as "
        "V + (M1 - M), keeping what V's video training added; on the embedded world's jointly trained model it gave "
        "the motion back and cost some look (docs/method.md, 'Delta injection on the jointly trained model'). "
        "Without spatial adapters."
    ),
]
Config = Annotated[
    Path | None,
    typer.Option(help="JSON/YAML config whose keys are this command's option names; options given here override it."),
]
# Help panels of the generated options: the fields each config class adds, under its own heading.
PANELS = {"OptimConfig": "Training", "TrainConfig": "Video model, sampling and validation"}


def _config(cls, config_file: Path | None, values: dict):
    """The verb's config: `--config`'s file with the options given on top (both in the same names), checked."""
    from stillmoving.training.config import load_config, make_config
    from stillmoving.validation import check_training

    values = {k: v for k, v in values.items() if v is not None and v != []}
    cfg = load_config(cls, config_file, **values) if config_file else make_config(cls, values)
    check_training(cfg)
    return cfg


def _panel(cls, name: str) -> str | None:
    """The help panel of a field: that of the base class that defines it first (None: the verb's own options)."""
    base = next(k for k in reversed(cls.__mro__) if name in getattr(k, "__dataclass_fields__", {}))
    return PANELS.get(base.__name__)


def _default_text(default) -> str:
    """ " Default: X." after a generated option's help (its real default is None: "not given")."""
    if default is None or default == []:
        return ""
    return f" Default: {str(default).lower() if isinstance(default, bool) else default}."


def training_options(cls):
    """A training verb whose options are the fields of its config `cls` (`--steps` is `steps`, help text from the
    field), each None unless given, so a `--config` file's value or the field's default applies; plus `--config`.
    The decorated function receives the checked config."""
    from stillmoving.training.config import cli_options

    parameters = []
    for option in cli_options(cls):
        flags = option["flags"]
        if option["type"] is bool:
            flags = [f"{flags[0]}/--no-{flags[0][2:]}", *flags[1:]]
        info = typer.Option(
            *flags,
            help=option["help"] + (" Required." if option["required"] else _default_text(option["default"])),
            rich_help_panel=_panel(cls, option["name"]),
        )
        annotation = Annotated[option["type"] | None, info]
        parameters.append(inspect.Parameter(option["name"], inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
    parameters.append(inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, annotation=Config))
    parameters = [p.replace(default=None) for p in parameters]

    def decorate(run):
        def command(**values):
            config = values.pop("config")
            return run(_config(cls, config, values))

        command.__name__, command.__doc__, command.__module__ = run.__name__, run.__doc__, run.__module__
        command.__signature__ = inspect.Signature(parameters)
        return command

    return decorate


def _parse_lora(spec: str) -> tuple[str, float]:
    """`path` or `path:weight` (`--lora`)."""
    from stillmoving.training.config import parse_lora

    return parse_lora(spec)


@motion_app.command("train")
@training_options(MotionAdapterConfig)
def motion_train(cfg):
    """Train the motion adapter on frozen videos (alpha = 1)."""
    from stillmoving.training.motion_stage import train_motion_adapter

    console.print(f"motion adapter written to {train_motion_adapter(cfg)}")


@t2i_app.command("dreambooth")
@training_options(DreamBoothConfig)
def t2i_dreambooth(cfg):
    """DreamBooth: fully fine-tune the T2I UNet on a few images of a subject."""
    from stillmoving.training.dreambooth import train_dreambooth

    console.print(f"customized T2I written to {train_dreambooth(cfg)}")


@t2i_app.command("lora")
@training_options(StyleLoRAConfig)
def t2i_lora(cfg):
    """Style LoRA: train a LoRA on the T2I's spatial attention from captioned images of a style."""
    from stillmoving.training.style_lora import train_style_lora

    console.print(f"style LoRA written to {train_style_lora(cfg)}")


@app.command()
@training_options(CustomizeConfig)
def customize(cfg):
    """Train spatial adapters for one customized T2I (the whole Still-Moving stage 2)."""
    from stillmoving.training.spatial_stage import train_spatial_adapters

    console.print(f"spatial adapters written to {train_spatial_adapters(cfg)}")


@app.command("customize-batch")
def customize_batch(
    runs: Annotated[
        Path,
        typer.Argument(
            help="JSON/YAML: a list of customize configs (keys: customize's option names), or "
            "{defaults: {...}, runs: [{...}, ...]}; each run its own output."
        ),
    ],
):
    """Train many customizations, spread over the launched processes (one spatial-adapter set each)."""
    from stillmoving.training.batch import customize_many, read_batch

    for path in customize_many(read_batch(runs)):
        console.print(f"spatial adapters written to {path}")


@app.command()
def generate(
    prompt: Annotated[list[str], typer.Option(help="Prompt (repeatable: one video each).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="File (.mp4/.gif) or folder of frames; numbered when several.")
    ],
    model: Annotated[str | None, typer.Option(help="Video model folder (default: from --customization).")] = None,
    customization: Annotated[Path | None, typer.Option(help="Folder written by `customize`.")] = None,
    motion_modules: MotionModules = None,
    customized: Customized = None,
    base_t2i: BaseT2I = None,
    lora: Annotated[
        list[str] | None, typer.Option(help="LoRA (kohya, diffusers or peft) PATH[:WEIGHT] fused into the T2I.")
    ] = None,
    config_dir: ConfigDir = None,
    domain_adapter: DomainAdapter = None,
    spatial_adapters: Annotated[str | None, typer.Option(help="Spatial-adapter file.")] = None,
    motion_adapter: Annotated[str | None, typer.Option(help="Motion adapter (needed for --motion-scale != 0).")] = None,
    motion_scale: Annotated[float, typer.Option(help="alpha: 0 normal motion, 1 static, -1 more motion.")] = 0.0,
    spatial_scale: Annotated[
        float,
        typer.Option(help="Strength of the spatial adapters, as a LoRA's weight: 1 as trained, 0 naive injection."),
    ] = 1.0,
    spatial_min_timestep: Annotated[
        int | None,
        typer.Option(
            help="The spatial adapters act at timesteps >= this only (0: all; default: as they trained, "
            "customize's --spatial-min-timestep)."
        ),
    ] = None,
    spatial_blocks: Annotated[
        str | None,
        typer.Option(
            help="The spatial adapters act in these parts of the UNet only: down, mid, up, comma-separated (default: "
            "the customization's recorded ones, which customize's check records when every block's adapters are "
            "worse than naive injection and the down and mid blocks' are not, or when those read no worse than every "
            "block's; else every adapter of the file). On "
            "the embedded world down,mid left a mildly drifted subject no worse than naive injection, kept a heavily "
            "drifted style's repair and removed a heavily drifted subject's flicker (docs/method.md, 'Where in the "
            "UNet the adapters repair and where they cost')."
        ),
    ] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="Negative prompt.")] = None,
    num_frames: Annotated[
        int | None,
        typer.Option(
            help="Frames (default: the control/input video's, else the model's own: its folder's "
            "generation_defaults.json, the embedded world's 8; else 16)."
        ),
    ] = None,
    height: Annotated[int | None, typer.Option(help="Height (default: the video's, else the model's).")] = None,
    width: Annotated[int | None, typer.Option(help="Width (default: the video's, else the model's).")] = None,
    steps: Annotated[
        int | None,
        typer.Option(
            help="Denoising steps (default: --customization's recorded setting, else the model's own: its folder's "
            "generation_defaults.json, the embedded world's 15; else 25)."
        ),
    ] = None,
    guidance_scale: Annotated[
        float | None,
        typer.Option(
            help="Classifier-free guidance scale (default: --customization's recorded setting, else the model's "
            "own: its folder's generation_defaults.json, the embedded world's 4; else 7.5)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="lcm (AnimateLCM) or lightning (AnimateDiff-Lightning): few-step presets, linear betas; or a "
            "diffusers scheduler class, e.g. DPMSolverMultistepScheduler (default: --customization's, else the "
            "model's own)."
        ),
    ] = None,
    lcm_lora: Annotated[
        str | None,
        typer.Option(
            help="AnimateLCM's spatial LoRA (AnimateLCM_sd15_t2v_lora.safetensors), PATH[:WEIGHT], fused into the "
            "video model and the customized T2I; with --scheduler lcm (default: --customization's)."
        ),
    ] = None,
    allow_sampler_mismatch: Annotated[
        bool,
        typer.Option(
            help="Generate with another scheduler, LCM LoRA, or few-step steps or guidance than --customization "
            "was trained with, anyway."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the first video; the next ones count up.")] = 0,
    fps: Annotated[int, typer.Option(help="Frames per second of the output.")] = 8,
    device: Annotated[str, typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps.")] = "auto",
    dtype: Annotated[
        str,
        typer.Option(
            help="auto (float32 on the CPU; bfloat16 on a GPU that supports it, "
            "else float16), float32, float16 or bfloat16 weights."
        ),
    ] = "auto",
    controlnet: Annotated[
        list[str] | None,
        typer.Option(help="ControlNet (diffusers folder or one .safetensors/.pth file), PATH[:SCALE] (repeatable)."),
    ] = None,
    control_video: Annotated[
        list[str] | None,
        typer.Option(
            help="Conditioning video (mp4/gif/frame folder; pose, depth, edges, a silhouette), one frame per "
            "output frame: one for all ControlNets or one each, in order."
        ),
    ] = None,
    video: Annotated[str | None, typer.Option(help="Input video for video-to-video (mp4/gif/frame folder).")] = None,
    strength: Annotated[
        float | None, typer.Option(help="Video-to-video: how far from --video to go, (0, 1] (default 0.8).")
    ] = None,
    context_length: Annotated[
        int | None,
        typer.Option(help="Long videos: frames per FreeNoise context window (e.g. 16), any --num-frames."),
    ] = None,
    context_stride: Annotated[int, typer.Option(help="Frames between FreeNoise context windows.")] = 4,
    free_init: Annotated[bool, typer.Option(help="FreeInit: re-draw the initial noise's high frequencies.")] = False,
    free_init_iterations: Annotated[int, typer.Option(help="FreeInit's sampling passes.")] = 3,
):
    """Generate videos with a (customized) video model; conditioned on ControlNet videos or an input video."""
    from stillmoving.conditioning import (
        check_controlnets_fit_model,
        conditional_pipeline,
        conditioning_shape,
        read_conditioning,
    )
    from stillmoving.few_step import resolved_sampler
    from stillmoving.inference import check_long_video, generate_videos, use_long_video
    from stillmoving.loading import assemble_pipeline, check_num_frames
    from stillmoving.run_folder import SPATIAL_BLOCKS_WHY, merge_customization, read_customization
    from stillmoving.validation import (
        check_base_t2i,
        check_device,
        check_dtype,
        check_generation,
        check_model_files,
        check_motion_scale,
        check_spatial_scale,
        native_frames,
        native_sampling,
        native_size,
    )

    sources = read_customization(customization) if customization else {}
    given = dict(
        model=model,
        motion_modules=motion_modules,
        customized=customized,
        loras=[_parse_lora(s) for s in lora] if lora else [],
        spatial_adapters=spatial_adapters,
        motion_adapter=motion_adapter,
        config_dir=config_dir,
        domain_adapter=domain_adapter,
        spatial_blocks=spatial_blocks,
    )
    files = merge_customization(given, sources)
    files["model"] = files["model"] or _missing("--model or --customization")
    check_spatial_scale(spatial_scale, spatial_min_timestep, files["spatial_adapters"], files["spatial_blocks"])
    check_motion_scale(motion_scale, files["motion_adapter"])
    check_base_t2i(base_t2i, files["customized"], files["loras"], files["spatial_adapters"] if spatial_scale else None)
    if spatial_blocks is None and files["spatial_blocks"]:
        from stillmoving.adapters.spatial import ALL_BLOCKS

        console.print(
            f"spatial adapters: the UNet's {files['spatial_blocks']} blocks only (recorded by {customization}: "
            f"{sources.get(SPATIAL_BLOCKS_WHY, 'customize')}; --spatial-blocks {ALL_BLOCKS} for every one)",
            highlight=False,
        )
    trained = f"customization {customization}" if customization else None  # its adapters' setting, or say so
    sampler = resolved_sampler(  # given, else recorded, else the model's own (generation_defaults.json), else 25, 7.5
        sources.get("sampler"), scheduler, lcm_lora, steps, guidance_scale,
        what=trained, verb="generate", allow=allow_sampler_mismatch, defaults=native_sampling(files["model"]),
    )  # fmt: skip
    if (steps is None or guidance_scale is None) and (sources.get("sampler") or {}).get("steps") is not None:
        setting = f"{sampler.steps} steps, guidance {sampler.guidance_scale:g}"
        one = "--steps" if steps is not None else "--guidance-scale" if guidance_scale is not None else None
        given_one = f"{one} given, the other " if one else ""
        console.print(f"sampling: {setting} ({given_one}recorded by {customization})", highlight=False)
    steps, guidance_scale, files["sampler"] = sampler.steps, sampler.guidance_scale, sampler
    check_model_files(**files)
    conditioning = read_conditioning(controlnet, control_video, video, strength)
    native = native_size(files["model"], files["config_dir"])  # diffusers' default: sample_size x the VAE's factor
    frames = native_frames(files["model"])  # the model folder's own clip length, else AnimateDiff's 16
    num_frames, height, width = conditioning_shape(conditioning, num_frames, height, width, native, frames)
    check_generation(files["model"], files["config_dir"], output, height, width, num_frames, steps, guidance_scale, fps)
    check_long_video(num_frames, context_length, context_stride, free_init_iterations if free_init else None)
    check_controlnets_fit_model(conditioning, files["model"])
    device = check_device(device)
    weights = check_dtype(dtype, device)
    console.print(f"device: {device}, dtype: {str(weights).removeprefix('torch.')}", highlight=False)
    pipe = assemble_pipeline(
        **files,
        device=device,
        dtype=weights,
        spatial_scale=spatial_scale,
        spatial_min_timestep=spatial_min_timestep,
        base_t2i=base_t2i,
    )
    check_num_frames(pipe, num_frames, context_length)
    pipe = conditional_pipeline(pipe, conditioning)
    use_long_video(pipe, context_length, context_stride, free_init_iterations if free_init else None)
    written = generate_videos(
        pipe,
        prompt,
        output,
        motion_scale=motion_scale,
        negative_prompt=negative_prompt,
        num_frames=num_frames,
        height=height,
        width=width,
        steps=steps,
        guidance_scale=guidance_scale,
        seed=seed,
        fps=fps,
        conditioning=conditioning,
    )
    for path in written:
        console.print(f"wrote {path}")


@app.command()
def export(
    customization: Annotated[Path, typer.Argument(help="Folder written by `customize`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="New folder to write.")],
    controlnet: Annotated[
        list[str] | None,
        typer.Option(help="ControlNet to save beside it in diffusers' layout, PATH[:SCALE] (repeatable)."),
    ] = None,
    base_t2i: BaseT2I = None,
):
    """Write a self-contained diffusers AnimateDiff folder (customized weights injected) + adapters + README; with
    --base-t2i, delta injection as a plain video model folder, without the adapters."""
    from stillmoving.conditioning import parse_controlnet
    from stillmoving.export import export_customization

    nets = [parse_controlnet(spec) for spec in controlnet or []]
    console.print(f"exported to {export_customization(customization, output, nets, base_t2i)}")


def _missing(what: str):
    raise StillMovingError(f"missing {what}")


@app.command()
def info(path: Annotated[Path, typer.Argument(help="Adapter, motion-module, LoRA or checkpoint file, or folder.")]):
    """Show what a file contains: adapters, AnimateDiff motion-module version, checkpoint, LoRA layout."""
    from stillmoving.describe import describe_file

    summary = describe_file(path)
    table = Table(show_header=False, title=str(path))
    for key, value in summary.items():
        text = "\n".join(map(str, value)) if isinstance(value, list) else str(value)
        table.add_row(key, text)
    Console().print(table)


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder.")] = Path("demo-report"),
    quick: Annotated[bool, typer.Option(help="A reduced run (one customization, few steps), as CI runs it.")] = False,
    full: Annotated[
        bool,
        typer.Option(
            help="The README's run: every trained variant with customize's own 500 steps at lr 1e-4 (steady from one "
            "training seed to another; about 23 minutes on 2 cores), the motion-scale sweep on 32 paired videos and "
            "the drift study's style at LoRA weight 0.5 too."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    spatial_seed: Annotated[
        int | None,
        typer.Option(
            help="customize's --seed for every trained variant (default: --seed); the customized T2Is, prompts and "
            "videos stay those of --seed, so two runs show how far the adapters' training seed moves the figures."
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="World T2V folder (default: the shipped ones).")] = None,
    motion_adapter: Annotated[str | None, typer.Option(help="Its motion adapter (default: the shipped one).")] = None,
    frame_agreement: Annotated[
        float, typer.Option(help="customize's --frame-agreement for every trained variant (0: the paper's).")
    ] = 0.0,
    frozen_target: Annotated[
        str, typer.Option(help="customize's --frozen-target for every trained variant (noise: the paper's).")
    ] = "noise",
    prior_loss: Annotated[
        str, typer.Option(help="customize's --prior-loss for every trained variant (video: the paper's).")
    ] = "motion",
    prior_loss_weight: Annotated[
        float, typer.Option(help="customize's --prior-loss-weight for Still-Moving (the paper: 1).")
    ] = 0.0,
    image_guidance_scale: Annotated[
        float,
        typer.Option(
            help="customize's --image-guidance-scale for every trained variant (1: none; the demo generates at 4)."
        ),
    ] = 1.0,
    spatial_min_timestep: Annotated[
        int, typer.Option(help="customize's --spatial-min-timestep for every trained variant (0: the paper's).")
    ] = 0,
    spatial_rank: Annotated[int, typer.Option(help="customize's --spatial-rank for every trained variant.")] = 8,
    spatial_blocks: Annotated[
        str, typer.Option(help="customize's --spatial-blocks for every trained variant (down,mid,up: the paper's).")
    ] = "down,mid,up",
    generate_spatial_blocks: Annotated[
        str | None,
        typer.Option(help="generate's --spatial-blocks for every trained variant's videos (default: every adapter)."),
    ] = None,
    spatial_steps: Annotated[
        int | None,
        typer.Option(
            help="customize's --steps for every trained variant (default: 120, --quick 6, --full customize's own 500, "
            "at lr 1e-4, steadier from one training seed to another, docs/method.md)."
        ),
    ] = None,
    spatial_lr: Annotated[
        float | None, typer.Option(help="customize's --lr for every trained variant (default: 1e-3; --full: 1e-4).")
    ] = None,
    snr_gamma: Annotated[
        float, typer.Option(help="customize's --snr-gamma for every trained variant (0: plain MSE, the paper's).")
    ] = 0.0,
    reencode_images: Annotated[
        float, typer.Option(help="customize's --reencode-images for every trained variant (0: the sampler's latents).")
    ] = 0.0,
    guidance_scale: Annotated[
        float, typer.Option(help="Classifier-free guidance of every video and image the demo generates and scores.")
    ] = 4.0,
    jobs: Annotated[
        int,
        typer.Option(help="Worker processes for the phases (0: one per CPU core, at most 4; 1: all in this one)."),
    ] = 0,
):
    """Run Still-Moving on the embedded world against its baselines and ablations; write an HTML report."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from stillmoving.adapters.spatial import parse_blocks
    from stillmoving.training.spatial_stage import FROZEN_TARGETS, PRIOR_LOSSES
    from stillmoving.validation import at_least, check_exists, in_unit_interval, one_of, positive
    from stillmoving.world.demo import DemoConfig, run_demo, verdict_counts

    if quick and full:
        raise StillMovingError("--quick and --full: choose one")
    check_exists("--model", model)
    check_exists("--motion-adapter", motion_adapter)
    one_of("--frozen-target", frozen_target, FROZEN_TARGETS)
    one_of("--prior-loss", prior_loss, PRIOR_LOSSES)
    at_least("--prior-loss-weight", prior_loss_weight, 0)
    at_least("--image-guidance-scale", image_guidance_scale, 0)
    at_least("--guidance-scale", guidance_scale, 0)
    at_least("--spatial-min-timestep", spatial_min_timestep, 0)
    at_least("--spatial-rank", spatial_rank, 1)
    parse_blocks(spatial_blocks)
    if generate_spatial_blocks is not None:
        parse_blocks(generate_spatial_blocks, "--generate-spatial-blocks")
    if spatial_steps is not None:
        at_least("--spatial-steps", spatial_steps, 1)
    if spatial_lr is not None:
        positive("--spatial-lr", spatial_lr)
    at_least("--snr-gamma", snr_gamma, 0)
    in_unit_interval("--reencode-images", reencode_images)
    if spatial_seed is not None:
        at_least("--spatial-seed", spatial_seed, 0)
    at_least("--jobs", jobs, 0)
    diffusers_logging.disable_progress_bar()  # dozens of model loads; the demo prints one line per phase
    transformers_logging.disable_progress_bar()
    values = dict(
        output_dir=str(output),
        seed=seed,
        spatial_seed=spatial_seed,
        model=model,
        motion_adapter=motion_adapter,
        frame_agreement=frame_agreement,
        frozen_target=frozen_target,
        prior_loss=prior_loss,
        prior_loss_weight=prior_loss_weight,
        image_guidance_scale=image_guidance_scale,
        spatial_min_timestep=spatial_min_timestep,
        spatial_rank=spatial_rank,
        spatial_blocks=spatial_blocks,
        generate_spatial_blocks=generate_spatial_blocks,
        snr_gamma=snr_gamma,
        reencode_images=reencode_images,
        guidance_scale=guidance_scale,
        jobs=jobs,
    )
    given = dict(spatial_steps=spatial_steps, spatial_lr=spatial_lr)  # else each size's own (--quick: 6 steps)
    values |= {name: value for name, value in given.items() if value is not None}
    cfg = DemoConfig.quick(**values) if quick else DemoConfig.full(**values) if full else DemoConfig(**values)
    page = run_demo(cfg)
    if (claims := page.parent / "claims.json").is_file():
        counts, failed = verdict_counts(claims)
        console.print(", ".join(f"{n} {verdict}" for verdict, n in counts.items()) + " (the paper's claims, judged):")
        for section, statement in failed:
            console.print(f"  does not hold: {section}: {statement}", highlight=False, soft_wrap=True)
    console.print(f"report written to {page}")


@world_app.command("render")
def world_render(
    output: Annotated[Path, typer.Argument(help="Folder to write (captions go to metadata.jsonl).")],
    count: Annotated[int, typer.Option(help="How many videos or images.")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed renders the same folder.")] = 0,
    images: Annotated[bool, typer.Option(help="Still images (PNG) instead of videos.")] = False,
    subject: Annotated[str | None, typer.Option(help="A held-out subject instead of base objects: star.")] = None,
    style: Annotated[str | None, typer.Option(help="A held-out style: crayon, neon.")] = None,
    num_frames: Annotated[int, typer.Option(help="Frames per video.")] = 8,
    resolution: Annotated[int, typer.Option(help="Frame side in pixels.")] = 32,
    video_format: Annotated[
        str, typer.Option("--format", help="frames (PNG folders, lossless) | gif | mp4.")
    ] = "frames",
):
    """Render captioned world videos (or images) into a folder the training and eval commands read."""
    from stillmoving.validation import at_least
    from stillmoving.world.folders import write_image_folder, write_video_folder

    for flag, value in (("--count", count), ("--num-frames", num_frames), ("--resolution", resolution)):
        at_least(flag, value, 1)
    if images:
        folder = write_image_folder(output, count, seed, resolution, subject, style)
    else:
        suffix = {"frames": "", "gif": ".gif", "mp4": ".mp4"}.get(video_format)
        if suffix is None:
            raise StillMovingError(f"--format must be frames, gif or mp4, not {video_format!r}")
        folder = write_video_folder(output, count, seed, num_frames, resolution, subject, style, suffix)
    console.print(f"{count} {'images' if images else 'videos'} written to {folder}")


ClipModel = Annotated[
    str | None,
    typer.Option(
        help="CLIP model folder or Hub id, for CLIP-T, CLIP-I and temporal "
        "consistency (published: openai/clip-vit-base-patch32)."
    ),
]
DinoModel = Annotated[
    str | None,
    typer.Option(help="DINO or DINOv2 model folder or Hub id, for DINO-I (published: facebook/dino-vits16)."),
]
ReferenceImages = Annotated[
    str | None, typer.Option(help="Folder of the subject's or style's images, for CLIP-I and DINO-I.")
]
DinoPreprocess = Annotated[
    str,
    typer.Option(help="dreamvideo (resize 256, centre crop 224, as published) or processor (the DINO folder's own)."),
]
Flow = Annotated[str, typer.Option(help="Optical flow of dynamic degree: farneback (measured best here) or dis.")]
Fps = Annotated[float, typer.Option(help="Frames per second of the videos; dynamic degree samples 8 (VBench).")]
WorldMetrics = Annotated[
    bool | None, typer.Option(help="The embedded world's oracle metrics (default: for videos of the world).")
]
EvalDevice = Annotated[str, typer.Option(help="Where the CLIP/DINO models run: auto, cpu, cuda, cuda:1, mps.")]


def _eval_settings(values: dict):
    from stillmoving.evaluation.score import EvalSettings

    keys = (
        "clip_model",
        "dino_model",
        "reference_images",
        "dino_preprocess",
        "flow",
        "fps",
        "world_metrics",
        "target",
        "device",
    )
    return EvalSettings(**{k: values[k] for k in keys if k in values})


def _summary_table(summary: dict, title: str) -> Table:
    table = Table("metric", "mean", "std", "n", title=title)
    for key, stats in summary.items():
        table.add_row(key, f"{stats['mean']:.3f}", f"{stats['std']:.3f}", str(stats["n"]))
    return table


@app.command("eval")
def evaluate(
    videos: Annotated[Path, typer.Argument(help="Folder of videos (captions in metadata.jsonl or .txt sidecars).")],
    clip_model: ClipModel = None,
    dino_model: DinoModel = None,
    reference_images: ReferenceImages = None,
    prompt: Annotated[str | None, typer.Option(help="Prompt of videos without a caption.")] = None,
    dino_preprocess: DinoPreprocess = "dreamvideo",
    flow: Flow = "farneback",
    fps: Fps = 8.0,
    world_metrics: WorldMetrics = None,
    target: Annotated[str | None, typer.Option(help="World look to score fidelity on: star, crayon, neon.")] = None,
    device: EvalDevice = "auto",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the metrics as JSON here.")] = None,
):
    """Score videos: CLIP-T, CLIP-I, DINO-I, temporal consistency, dynamic degree (and the world's oracle)."""
    from stillmoving.evaluation.score import evaluate_folder, write_evaluation
    from stillmoving.validation import check_writable

    if output:
        check_writable(output)
    result = evaluate_folder(videos, _eval_settings(locals()), prompt)
    Console().print(_summary_table(result["summary"], str(videos)))
    if output:
        console.print(f"metrics written to {write_evaluation(result, output)}")


@app.command()
def compare(
    customization: Annotated[
        Path,
        typer.Option(
            help="Folder written by `customize`: the video model, the "
            "customized T2I and the spatial adapters come from it."
        ),
    ],
    prompt: Annotated[list[str], typer.Option(help="Evaluation prompt, naming the customization (repeatable).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder; rerun to resume.")] = Path(
        "compare-report"
    ),
    seeds: Annotated[int, typer.Option(help="Videos per prompt (seeds 0..N-1), the same for every variant.")] = 2,
    interpolation_weight: Annotated[
        float,
        typer.Option(
            help="w of the weight-interpolation baseline: the video model's T2I + w (customized - base), in [0, 1]."
        ),
    ] = 0.5,
    base_t2i: BaseT2I = None,
    clip_model: ClipModel = None,
    dino_model: DinoModel = None,
    reference_images: ReferenceImages = None,
    dino_preprocess: DinoPreprocess = "dreamvideo",
    flow: Flow = "farneback",
    world_metrics: WorldMetrics = None,
    target: Annotated[str | None, typer.Option(help="World look to score fidelity on: star, crayon, neon.")] = None,
    num_frames: Annotated[
        int | None, typer.Option(help="Frames (default: the video model's own, as generate's; else 16).")
    ] = None,
    height: Annotated[int | None, typer.Option(help="Height in pixels (default: the video model's own).")] = None,
    width: Annotated[int | None, typer.Option(help="Width in pixels (default: the video model's own).")] = None,
    steps: Annotated[
        int | None,
        typer.Option(help="Denoising steps (default: the customization's recorded setting, else the model's own)."),
    ] = None,
    guidance_scale: Annotated[
        float | None,
        typer.Option(help="Guidance scale (default: the customization's recorded setting, else the model's own)."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="lcm or lightning (few-step presets), or a diffusers scheduler class, for every variant (default: "
            "the customization's, else the model's own)."
        ),
    ] = None,
    lcm_lora: Annotated[
        str | None,
        typer.Option(
            help="AnimateLCM's spatial LoRA PATH[:WEIGHT], with --scheduler lcm (default: the customization's)."
        ),
    ] = None,
    allow_sampler_mismatch: Annotated[
        bool,
        typer.Option(
            help="Compare with another scheduler, LCM LoRA, or few-step steps or guidance than the customization was "
            "trained with, anyway."
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, float16 or bfloat16 generation weights.")] = "auto",
    overwrite: Annotated[bool, typer.Option(help="Discard videos made with other settings in --output.")] = False,
):
    """The paper's comparison: base T2V, customized T2I, naive injection, weight interpolation, Still-Moving (and delta
    injection, with --base-t2i)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from stillmoving.evaluation.compare import CompareConfig, run_compare

    diffusers_logging.disable_progress_bar()  # a model load per variant; one line each instead
    transformers_logging.disable_progress_bar()
    cfg = CompareConfig(
        customization=str(customization),
        output_dir=str(output),
        prompts=prompt,
        seeds=seeds,
        interpolation_weight=interpolation_weight,
        base_t2i=base_t2i,
        num_frames=num_frames,
        height=height,
        width=width,
        steps=steps,
        guidance_scale=guidance_scale,
        scheduler=scheduler,
        lcm_lora=lcm_lora,
        allow_sampler_mismatch=allow_sampler_mismatch,
        device=device,
        dtype=dtype,
        overwrite=overwrite,
        evaluation=_eval_settings(locals()),
    )
    report = run_compare(
        cfg,
        on_variant=lambda name, seconds: console.print(
            f"{name}: {f'generated in {seconds:.0f} s' if seconds else 'all videos on disk'}", highlight=False
        ),
    )
    console.print(f"report written to {report}")


@app.command()
def bench(
    preset: Annotated[
        list[str],
        typer.Option(
            help="tiny | world | sd15-256 | sd15-512 | animatediff-v3-512 | animatediff-sdxl-1024 | modelscope-256 | "
            "zeroscope-576w "
            "(repeatable or a comma list; all but tiny and world are random weights at the real sizes, meant for a "
            "GPU, or --device meta)."
        ),
    ] = ["world"],  # noqa: B006 (Typer reads the default and never mutates it)
    steps: Annotated[
        int,
        typer.Option(
            help="Timing rounds (one step of every stage each), after a warm-up and a FLOP-counted step of each."
        ),
    ] = 5,
    batch_size: Annotated[int, typer.Option(help="Videos per batch (the spatial step takes two batches).")] = 1,
    device: Annotated[
        str, typer.Option(help="cpu, cuda or cuda:N; meta: parameters and FLOPs only, no time (no GPU needed).")
    ] = "cpu",
    dtype: Annotated[
        str,
        typer.Option(
            help="float32, bfloat16 or float16 frozen weights + autocast (the straightforward step stays fp32)."
        ),
    ] = "float32",
    gradient_checkpointing: Annotated[bool, typer.Option(help="Gradient checkpointing in the UNet.")] = False,
    customize_steps: Annotated[
        int,
        typer.Option(
            help="Also time the whole customize command with this many "
            "training steps against a straightforward one (0: skip)."
        ),
    ] = 0,
    customize_items: Annotated[int, typer.Option(help="Images and prior videos sampled in that comparison.")] = 8,
    attention: Annotated[
        str, typer.Option(help="sdpa (diffusers' default, torch SDPA) or classic (bmm + softmax).")
    ] = "sdpa",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the results as JSON here.")] = None,
):
    """Seconds, memory and FLOPs per training step of both stages against a floor and a straightforward version."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from stillmoving.bench import (
        BenchSettings,
        customize_table,
        generation_table,
        parse_presets,
        run_bench,
        training_table,
        write_report,
    )

    diffusers_logging.disable_progress_bar()  # model loading bars; the bench prints one line per preset
    transformers_logging.disable_progress_bar()
    if device == "meta":
        from stillmoving.bench.cost import cost_report

        Console(width=150).print(cost_report(parse_presets(preset), output))
        return
    settings = BenchSettings(
        presets=preset,
        steps=steps,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        gradient_checkpointing=gradient_checkpointing,
        customize_steps=customize_steps,
        customize_items=customize_items,
        attention=attention,
    )
    report = run_bench(settings, on_preset=lambda result: console.print(f"benchmarked {result.preset}"))
    out = Console()
    out = out if out.is_terminal else Console(width=130)  # piped into a log: one line per row
    out.print(training_table(report.presets))
    out.print(generation_table(report.presets))
    if (whole := customize_table(report.presets)) is not None:
        out.print(whole)
    if output:
        write_report(report, output)
        console.print(f"results written to {output}")


@app.command()
def ui(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on; 127.0.0.1 (this machine only) unless you mean to serve others, e.g. 0.0.0.0."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7860,
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Folder the app writes customizations, uploaded images and videos into."),
    ] = Path("stillmoving-ui"),
    folder: Annotated[
        list[Path] | None,
        typer.Option(
            help="Folder of your own models, customizations or images "
            "the app may read (repeatable); it reads nothing "
            "else but --output and the embedded world."
        ),
    ] = None,
):
    """A local web app: generate with the motion-scale slider, customize with live progress, compare."""
    from stillmoving.ui import require_gradio, serve
    from stillmoving.validation import at_least

    at_least("--port", port, 1)
    require_gradio()
    try:
        serve(output, folder or [], host=host, port=port)
    except OSError as error:
        raise StillMovingError(f"cannot listen on {host}:{port}: {error}") from None


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except StillMovingError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)  # "[ui]" is text
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
