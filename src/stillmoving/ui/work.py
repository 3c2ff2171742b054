"""The web app's three actions on the library, free of gradio: generate, compare, and the customize plan.

Generation composes the same functions as `stillmoving generate` (its checks, `assemble_pipeline`,
`generate_videos`), and each video comes with the `generate` command that makes it again. Customizing runs
the `t2i` and `customize` commands themselves (see jobs.py).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from stillmoving import run_folder
from stillmoving.errors import StillMovingError
from stillmoving.run_folder import CUSTOMIZE_RUN, DREAMBOOTH_RUN, STYLE_LORA_RUN
from stillmoving.ui.folders import Folders, VideoModel, check_name, readable, video_model

COMPARE_SCALES = (-1.0, 0.0, 1.0)  # the motion scales Compare shows side by side
KEPT_PIPELINES = 2  # assembled pipelines kept loaded (naive injection and Still-Moving, for Compare)


@dataclass
class Generation:
    """One video's settings; each field is the `generate` option of the same name."""

    prompt: str
    video_model: str = "world:animatediff"  # a video model choice (folders.video_model_choices)
    customization: str = ""  # a folder written by `customize` ("" or "(none)": none)
    motion_adapter: str = ""  # a user's video model's motion adapter (the world's ship with theirs)
    negative_prompt: str = ""
    seed: int = 0
    num_frames: int = 8
    height: int = 32
    width: int = 32
    steps: int = 15
    guidance_scale: float = 4.0
    motion_scale: float = 0.0
    # the T2I the customization's customized T2I was made from ("" or "(none)": none): delta injection, V + (M1 - M),
    # in place of the spatial adapters (`generate --base-t2i`; for jointly trained video models)
    base_t2i: str = ""


NO_BASE = "(none)"


def customization_files(folders: Folders, customization: str) -> tuple[dict, Path] | None:
    """`assemble_pipeline`'s files of a customization folder, and the folder; None when none is chosen."""
    if customization.strip() in ("", "(none)"):
        return None
    folder = Path(readable(folders, customization, "customization"))
    files = run_folder.model_files(run_folder.read_customization(folder))
    for key in ("model", "motion_modules", "customized", "spatial_adapters", "motion_adapter", "config_dir"):
        if files[key]:  # what the record names is read too, so it must lie in a configured folder
            files[key] = readable(folders, files[key], key.replace("_", " "))
    files["loras"] = [(readable(folders, path, "LoRA"), weight) for path, weight in files["loras"]]
    if files.get("domain_adapter"):
        readable(folders, files["domain_adapter"]["path"], "domain adapter")
    lcm_lora = (files.get("sampler") or {}).get("lcm_lora") or {}
    if lcm_lora.get("path"):
        readable(folders, lcm_lora["path"], "LCM LoRA")
    return files, folder


def model_files(folders: Folders, gen: Generation) -> tuple[dict, Path | None]:
    """`assemble_pipeline`'s files for a generation, and its customization folder when it has one; with a base T2I,
    the customization's customized T2I by delta injection and without its spatial adapters (`check_base_t2i`)."""
    found = customization_files(folders, gen.customization)
    if gen.base_t2i.strip() not in ("", NO_BASE):
        if found is None:
            raise StillMovingError("delta injection (a base T2I) needs a customization: its customized T2I is M1")
        files, folder = found
        base = readable(folders, gen.base_t2i, "base T2I")
        return {**files, "spatial_adapters": None, "spatial_blocks": None, "base_t2i": base}, folder
    if found is not None:
        return found
    vm: VideoModel = video_model(folders, gen.video_model, gen.motion_adapter)
    return dict(model=vm.model, motion_adapter=vm.motion_adapter), None


def sampler_flags(record) -> list[str]:
    """`--scheduler` and `--lcm-lora` of a recorded sampling setting (what `--customization` would bring)."""
    from stillmoving.few_step import parse_sampler

    sampler = parse_sampler(record)
    if sampler is None:
        return []
    flags = ["--scheduler", sampler.scheduler] if sampler.scheduler else []
    lora = sampler.lcm_lora
    if lora is not None and lora.path and not lora.fused:
        flags += ["--lcm-lora", f"{lora.path}:{lora.weight:g}"]
    return flags


def generate_command(gen: Generation, files: dict, customization: Path | None, output: Path) -> str:
    """The `stillmoving generate` command that makes this video again."""
    args = ["stillmoving", "generate"]
    if customization is not None:
        args += ["--customization", str(customization)]
        if files.get("base_t2i"):  # its spatial adapters off: delta injection of its customized T2I
            args += ["--base-t2i", files["base_t2i"], "--spatial-scale", "0"]
    else:
        args += ["--model", files["model"]]
        for flag in ("motion_modules", "config_dir", "customized", "spatial_adapters"):
            if files.get(flag):
                args += [f"--{flag.replace('_', '-')}", str(files[flag])]
        for path, weight in files.get("loras", []):
            args += ["--lora", f"{path}:{weight:g}"]
        if files.get("base_t2i"):
            args += ["--base-t2i", files["base_t2i"]]
        if gen.motion_scale != 0 and files.get("motion_adapter"):
            args += ["--motion-adapter", str(files["motion_adapter"])]
        args += sampler_flags(files.get("sampler"))
    args += ["--prompt", gen.prompt]
    if gen.negative_prompt:
        args += ["--negative-prompt", gen.negative_prompt]
    args += [
        "--motion-scale",
        f"{gen.motion_scale:g}",
        "--seed",
        str(gen.seed),
        "--num-frames",
        str(gen.num_frames),
        "--height",
        str(gen.height),
        "--width",
        str(gen.width),
        "--steps",
        str(gen.steps),
        "--guidance-scale",
        f"{gen.guidance_scale:g}",
        "-o",
        str(output),
    ]
    return shlex.join(args)


class Pipelines:
    """Assembled pipelines kept loaded between generations (the last `KEPT_PIPELINES`), keyed by their files."""

    def __init__(self):
        self._kept: OrderedDict[str, object] = OrderedDict()

    def get(self, files: dict, device: str, dtype):
        from stillmoving.loading import assemble_pipeline

        key = json.dumps([files, device, str(dtype)], sort_keys=True, default=str)
        if key not in self._kept:
            while len(self._kept) >= KEPT_PIPELINES:
                self._kept.popitem(last=False)
            pipe = assemble_pipeline(**files, device=device, dtype=dtype)
            pipe.set_progress_bar_config(disable=True)
            self._kept[key] = pipe
        self._kept.move_to_end(key)
        return self._kept[key]


@dataclass
class Video:
    """A generated video: the mp4 the page plays, the GIF beside it, and the command that makes it again."""

    mp4: Path
    gif: Path
    command: str
    label: str = ""


def _name(gen: Generation, files: dict) -> str:
    words = "_".join("".join(c for c in w if c.isalnum()) for w in gen.prompt.split()[:5]) or "video"
    digest = hashlib.sha1(json.dumps([asdict(gen), files], sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{words}_seed{gen.seed}_motion{gen.motion_scale:g}_{digest}"


def check_generation_inputs(folders: Folders, gen: Generation) -> tuple[dict, Path | None]:
    """Every check `generate` makes, before any model loads; returns model_files(). A customization's recorded
    sampling setting is checked as `generate --customization` checks it (`few_step.resolved_sampler`): other steps or
    guidance than a few-step setting's are refused in the CLI's line; its scheduler and LCM LoRA are the ones
    `assemble_pipeline` applies (the page names none)."""
    from stillmoving.few_step import resolved_sampler
    from stillmoving.validation import check_base_t2i, check_generation, check_model_files

    if not gen.prompt.strip():
        raise StillMovingError("write a prompt")
    if not -1 <= gen.motion_scale <= 1:
        raise StillMovingError(f"the motion scale must be between -1 and 1, not {gen.motion_scale:g}")
    files, customization = model_files(folders, gen)
    if gen.motion_scale != 0 and not files.get("motion_adapter"):
        raise StillMovingError("a motion scale other than 0 needs the video model's motion adapter")
    check_model_files(**{k: v for k, v in files.items() if k != "base_t2i"})
    check_base_t2i(files.get("base_t2i"), files.get("customized"), files.get("loras"), None)
    trained = f"customization {customization}" if customization is not None else None
    resolved_sampler(files.get("sampler"), None, None, gen.steps, gen.guidance_scale, what=trained, verb="generate")
    check_generation(
        files["model"],
        files.get("config_dir"),
        folders.videos_dir() / "x.mp4",
        gen.height,
        gen.width,
        gen.num_frames,
        gen.steps,
        gen.guidance_scale,
        8,
    )
    return files, customization


def generate(
    folders: Folders, pipelines: Pipelines, gen: Generation, files: dict | None = None, label: str = ""
) -> Video:
    """One video on this machine's best device, written as mp4 and GIF under the output's videos/."""
    from stillmoving.data.video_io import read_video, write_video
    from stillmoving.inference import generate_videos
    from stillmoving.loading import check_num_frames
    from stillmoving.validation import check_device, check_dtype

    checked, customization = check_generation_inputs(folders, gen)
    files = files or checked
    device = check_device("auto")
    pipe = pipelines.get(files, device, check_dtype("auto", device))
    check_num_frames(pipe, gen.num_frames)
    stem = folders.videos_dir() / _name(gen, files)
    (frames_dir,) = generate_videos(
        pipe,
        [gen.prompt],
        stem,
        motion_scale=gen.motion_scale,
        negative_prompt=gen.negative_prompt or None,
        num_frames=gen.num_frames,
        height=gen.height,
        width=gen.width,
        steps=gen.steps,
        guidance_scale=gen.guidance_scale,
        seed=gen.seed,
    )
    frames = read_video(frames_dir)  # lossless PNG frames, encoded once for each format
    mp4, gif = write_video(frames, stem.with_suffix(".mp4")), write_video(frames, stem.with_suffix(".gif"))
    shutil.rmtree(frames_dir)
    named = customization if files is checked else None
    return Video(mp4, gif, generate_command(gen, files, named, mp4), label)


def recorded_sampler(folders: Folders, customization: str):
    """The sampling setting a customization recorded (`few_step.Sampler`); None when none is chosen or it records
    none."""
    from stillmoving.few_step import parse_sampler

    found = customization_files(folders, customization)
    return None if found is None else parse_sampler(found[0].get("sampler"))


def recorded_sampling(folders: Folders, gen: Generation) -> Generation:
    """`gen` with the steps and guidance its customization's record names, where it names them (what `generate
    --customization` samples with by default); the scheduler and LCM LoRA it names are applied when the pipeline
    loads (`assemble_pipeline`)."""
    from dataclasses import replace

    recorded = recorded_sampler(folders, gen.customization)
    if recorded is None:
        return gen
    return replace(
        gen,
        steps=gen.steps if recorded.steps is None else recorded.steps,
        guidance_scale=gen.guidance_scale if recorded.guidance_scale is None else recorded.guidance_scale,
    )


def compare(folders: Folders, pipelines: Pipelines, gen: Generation) -> list[Video]:
    """The same prompt and seed through naive injection and Still-Moving (with a customization; delta injection
    instead with a base T2I), then the motion scale at -1, 0 and 1 (of that one, or the video model's own without a
    customization). A customization
    that records a sampling setting (`few_step`: a few-step scheduler's steps and guidance) is sampled with its
    steps and guidance, not the page's, as `generate --customization` and `compare` sample it."""
    from dataclasses import replace

    gen = recorded_sampling(folders, gen)
    files, customization = check_generation_inputs(folders, replace(gen, motion_scale=0.0))
    videos = []
    if customization is not None:
        naive = {**files, "spatial_adapters": None, "motion_adapter": None, "base_t2i": None}
        videos.append(generate(folders, pipelines, replace(gen, motion_scale=0.0), naive, "naive injection"))
    if not files.get("motion_adapter"):
        raise StillMovingError("comparing motion scales needs the video model's motion adapter")
    name = "Still-Moving" if customization is not None else "video model"
    name = "delta injection" if files.get("base_t2i") else name
    for scale in COMPARE_SCALES:
        videos.append(
            generate(folders, pipelines, replace(gen, motion_scale=scale), None, f"{name}, motion scale {scale:g}")
        )
    return videos


# ----------------------------------------------------------------------------- customize


@dataclass
class CustomizePlan:
    """A customization as the page describes it; `commands()` turns it into the CLI commands to run."""

    name: str  # its folder under the output's customizations/
    prompt: str  # "a sks star": what the customized T2I makes
    identifier: str = "sks"  # the word naming the customization; prior prompts are the prompt without it
    video_model: str = "world:animatediff"
    motion_adapter: str = ""  # a user's video model's stage-1 adapter (the world's ship with theirs)
    images: str = ""  # a folder of images: the customized T2I is first trained on them (`t2i_method`)
    t2i_method: str = "dreambooth"  # dreambooth (a subject) | lora (a style)
    t2i_steps: int = 200
    customized: str = ""  # or a customized T2I: a DreamBooth/UNet folder or one .safetensors file
    loras: list[tuple[str, float]] = field(default_factory=list)  # and/or LoRA files with weights
    steps: int = 120  # spatial-adapter steps
    num_images: int = 16
    num_prior_videos: int = 0  # prior videos for the paper's prior term (weight 1); 0: none, customize's default
    checkpoint_every: int = 10
    num_frames: int = 8
    height: int = 32
    width: int = 32
    sample_steps: int = 15
    num_validation_videos: int = 0


def parse_loras(text: str) -> list[tuple[str, float]]:
    """One `PATH[:WEIGHT]` per line, as `--lora` takes them."""
    from stillmoving.cli import _parse_lora

    return [_parse_lora(line.strip()) for line in text.splitlines() if line.strip()]


def t2i_base(plan: CustomizePlan, vm: VideoModel) -> str:
    """What the customized T2I is trained from: the world's T2I M (the AnimateDiff-like model's spatial layers,
    as the demo does for every world video model), else the user's video model's own T2I part."""
    from stillmoving.world.weights import shipped_model

    return str(shipped_model("animatediff")) if vm.world else vm.model


def _state_flag(folder: Path, record: str) -> list[str] | None:
    """None when the command finished in `folder` before; --resume when it left a checkpoint; else nothing."""
    from stillmoving.training.checkpoints import checkpoints

    if (folder / record).is_file():
        return None
    return ["--resume"] if checkpoints(folder) else []


def customize_commands(folders: Folders, plan: CustomizePlan) -> list[list[str]]:
    """The commands (without `stillmoving`) that make this customization from what is on disk now: a finished
    step is skipped, an interrupted one resumes from its last checkpoint."""
    run = folders.customizations_dir() / check_name(plan.name)
    vm = video_model(folders, plan.video_model, plan.motion_adapter)
    if not plan.prompt.strip():
        raise StillMovingError("write the customization's prompt, e.g. 'a sks star'")
    if not vm.motion_adapter:
        raise StillMovingError("customize needs the video model's motion adapter (stage 1)")
    size = ["--height", str(plan.height), "--width", str(plan.width)]
    commands, customized = [], plan.customized.strip()
    loras = [(readable(folders, path, "LoRA"), weight) for path, weight in plan.loras]
    if plan.images.strip():
        images = readable(folders, plan.images, "image folder")
        t2i = run / "t2i"
        record = DREAMBOOTH_RUN if plan.t2i_method == "dreambooth" else STYLE_LORA_RUN
        flag = _state_flag(t2i, record)
        if flag is not None:
            verb = ["t2i", "dreambooth"] if plan.t2i_method == "dreambooth" else ["t2i", "lora"]
            commands.append(
                [
                    *verb,
                    "--model",
                    t2i_base(plan, vm),
                    "-o",
                    str(t2i),
                    "--images",
                    images,
                    "--prompt",
                    plan.prompt,
                    "--steps",
                    str(plan.t2i_steps),
                    "--checkpoint-every",
                    str(plan.checkpoint_every),
                    *size,
                    *flag,
                ]
            )
        if plan.t2i_method == "dreambooth":
            customized = str(t2i)
        else:
            loras.append((str(t2i / "pytorch_lora_weights.safetensors"), 1.0))
    elif customized:
        customized = readable(folders, customized, "customized T2I")
    if not customized and not loras:
        raise StillMovingError(
            "give images to learn from, or a customized T2I (a folder, a .safetensors file, or LoRA files)"
        )
    flag = _state_flag(run, CUSTOMIZE_RUN)
    if flag is None:
        raise StillMovingError(f"customization {plan.name} exists already ({run}); choose another name")
    base = t2i_base(plan, vm)
    command = ["customize", "--model", vm.model, "-o", str(run), "--motion-adapter", vm.motion_adapter]
    if customized:
        command += ["--customized", customized]
    elif vm.world and base != vm.model:
        command += ["--customized", base]  # a LoRA made for the world's M fuses into M, not the joint model's T2I
    for path, weight in loras:
        command += ["--lora", f"{path}:{weight:g}"]
    command += [
        "--prompt",
        plan.prompt,
        "--identifier",
        plan.identifier,
        "--steps",
        str(plan.steps),
        "--num-images",
        str(plan.num_images),
        *(["--prior-loss-weight", "1", "--num-prior-videos", str(plan.num_prior_videos)] * (plan.num_prior_videos > 0)),
        "--checkpoint-every",
        str(plan.checkpoint_every),
        "--num-frames",
        str(plan.num_frames),
        *size,
        "--sample-steps",
        str(plan.sample_steps),
        "--num-validation-videos",
        str(plan.num_validation_videos),
        *flag,
    ]
    return [*commands, command]


def check_plan(folders: Folders, plan: CustomizePlan) -> None:
    """A plan's numbers, before it is queued (each command checks the rest itself)."""
    from stillmoving.validation import at_least, one_of

    one_of("T2I method", plan.t2i_method, ("dreambooth", "lora"))
    for what, value in (
        ("steps", plan.steps),
        ("T2I steps", plan.t2i_steps),
        ("images", plan.num_images),
        ("checkpoint every", plan.checkpoint_every),
        ("frames", plan.num_frames),
        ("sample steps", plan.sample_steps),
    ):
        at_least(what, value, 1)
    at_least("prior videos", plan.num_prior_videos, 0)
    customize_commands(folders, plan)
