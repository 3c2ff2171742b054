"""The page's widgets and how they are wired to `App`'s handlers (app.py)."""

from __future__ import annotations

import gradio as gr

from stillmoving.errors import StillMovingError
from stillmoving.ui.app import EXAMPLE_PROMPT, App, queue_table
from stillmoving.ui.folders import customization_choices, video_model_choices
from stillmoving.ui.work import NO_BASE
from stillmoving.validation import native_settings
from stillmoving.world.weights import shipped_model

INTRO = (
    "**Still-Moving**: animate a customized text-to-image model with a video model. The motion scale is the "
    "motion adapter's alpha: 0 the video model's own motion, 1 still, -1 more motion. One job runs at a "
    "time; the queue is at the bottom."
)


def base_t2i_choices() -> list[tuple[str, str]]:
    """(label, value) of the base T2Is Generate offers for delta injection: none (the customization's spatial
    adapters), and the world's T2I M, from which every world customization is made (type a folder for your own)."""
    choices = [("(none: the customization's spatial adapters)", NO_BASE)]
    try:
        choices.append(("world: M, the T2I of world: animatediff", str(shipped_model())))
    except StillMovingError:  # an install without the world's weights
        pass
    return choices


def generate_tab(app: App, world: dict) -> tuple[list, gr.Markdown]:
    """The settings Generate and Compare share, the Generate button and its video."""
    models = video_model_choices(app.folders)
    with gr.Row():
        with gr.Column(scale=1):
            model = gr.Dropdown(
                models,
                value=models[0][1],
                label="video model (or type a folder)",
                allow_custom_value=True,
                elem_id="video-model",
            )
            with gr.Row():
                customization = gr.Dropdown(
                    customization_choices(app.folders),
                    value="(none)",
                    label="customization (a folder written by customize)",
                    scale=4,
                    allow_custom_value=True,
                    elem_id="customization",
                )
                refresh = gr.Button("refresh", scale=1, size="sm")
            motion_adapter = gr.Textbox(
                label="motion adapter (your own video model only; the world's ship with theirs)",
                placeholder="folder or .safetensors file",
            )
            base_t2i = gr.Dropdown(
                base_t2i_choices(),
                value=NO_BASE,
                label="delta injection: the T2I the customized T2I was made from (jointly trained video models; "
                "V + (M1 - M) in place of the spatial adapters)",
                allow_custom_value=True,
                elem_id="base-t2i",
            )
            prompt = gr.Textbox(EXAMPLE_PROMPT, label="prompt", elem_id="prompt")
            negative = gr.Textbox(label="negative prompt")
            with gr.Row():
                seed = gr.Number(0, label="seed", precision=0, minimum=0)
                frames = gr.Number(world["num_frames"], label="frames", precision=0)
                steps = gr.Number(world["steps"], label="steps", precision=0)
            with gr.Row():
                height = gr.Number(world["height"], label="height", precision=0)
                width = gr.Number(world["width"], label="width", precision=0)
                guidance = gr.Number(world["guidance_scale"], label="guidance")
            motion = gr.Slider(
                -1,
                1,
                value=0,
                step=0.1,
                label="motion scale (-1 more motion, 0 the model's own, 1 still)",
                elem_id="motion-scale",
            )
            button = gr.Button("Generate", variant="primary", elem_id="generate")
        with gr.Column(scale=1):
            video = gr.Video(
                label="video", autoplay=True, loop=True, height=320, elem_id="video", elem_classes="pixelated"
            )
            files = gr.File(label="download (mp4, gif)", file_count="multiple")
            command = gr.Code(
                label="the command that makes it again", language="shell", wrap_lines=True, elem_id="command"
            )
            status = gr.Markdown(elem_id="generate-status")
    settings = [
        model,
        customization,
        motion_adapter,
        prompt,
        negative,
        seed,
        frames,
        height,
        width,
        steps,
        guidance,
        motion,
        base_t2i,
    ]
    outputs = [video, files, command, status]
    button.click(app.generate, settings, outputs, api_name="generate")
    motion.release(app.generate, settings, outputs, api_visibility="private")  # moving the knob makes a new video
    model.change(app.model_changed, [model], [height, width, frames, steps, guidance, status], api_visibility="private")
    refresh.click(app.refreshed_choices, [customization], [customization], api_visibility="private")
    customization.change(  # chosen, refreshed or made by Customize: its recorded steps and guidance
        app.customization_changed, [customization], [steps, guidance, status], api_visibility="private"
    )
    return settings, customization


def compare_tab(app: App, settings: list) -> None:
    gr.Markdown(
        "The Generate tab's prompt, seed and settings through naive injection (the customized T2I's "
        "weights in the video model) and Still-Moving (or, with a base T2I chosen, delta injection), then the "
        "motion scale at -1, 0 and 1."
    )
    button = gr.Button("Compare", variant="primary", elem_id="compare")
    with gr.Row():
        naive = gr.Video(label="naive injection", autoplay=True, loop=True, height=240, elem_classes="pixelated")
        ours = gr.Video(
            label="Still-Moving (delta injection, with a base T2I)",
            autoplay=True,
            loop=True,
            height=240,
            elem_classes="pixelated",
        )
    with gr.Row():
        scales = [
            gr.Video(label=f"motion scale {s:g}", autoplay=True, loop=True, height=200, elem_classes="pixelated")
            for s in (-1, 0, 1)
        ]
    commands = gr.Code(label="the commands that make them again", language="shell", wrap_lines=True)
    status = gr.Markdown(elem_id="compare-status")
    button.click(app.compare, settings, [naive, ours, *scales, commands, status], api_name="compare")


def customize_tab(app: App, world: dict, generate_customization: gr.Dropdown, tabs: gr.Tabs) -> tuple:
    """Customize's settings, Start/Cancel/Resume, and the running job's progress, loss and commands."""
    models = video_model_choices(app.folders)
    job_id, plan, announced = gr.Number(None, visible=False), gr.State(None), gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            name = gr.Textbox("sks-star", label="name (a folder under the output folder's customizations/)")
            model = gr.Dropdown(
                models, value=models[0][1], label="video model (or type a folder)", allow_custom_value=True
            )
            motion_adapter = gr.Textbox(label="motion adapter (your own video model only)")
            prompt = gr.Textbox("a sks star", label="prompt naming the customization")
            identifier = gr.Textbox("sks", label="identifier (prior videos use the prompt without it)")
            with gr.Tab("learn from images"):
                uploads = gr.File(label="upload images", file_count="multiple", file_types=["image"])
                images = gr.Textbox(label="or a folder of images (inside a configured folder)")
                example = gr.Button("example: render the world's held-out sks star", size="sm")
                method = gr.Radio(
                    ["dreambooth", "lora"],
                    value="dreambooth",
                    label="customized T2I: DreamBooth (a subject) or a style LoRA",
                )
                t2i_steps = gr.Number(200, label="T2I training steps", precision=0)
            with gr.Tab("or a customized T2I"):
                customized = gr.Textbox(label="DreamBooth/UNet folder or one .safetensors checkpoint")
                loras = gr.Textbox(label="LoRA files, one PATH[:WEIGHT] per line", lines=2)
            with gr.Accordion("training", open=False):
                with gr.Row():
                    steps = gr.Number(120, label="steps", precision=0)
                    checkpoint_every = gr.Number(10, label="checkpoint every", precision=0)
                    sample_steps = gr.Number(world["steps"], label="sampling steps", precision=0)
                with gr.Row():
                    num_images = gr.Number(16, label="images", precision=0)
                    num_prior = gr.Number(0, label="prior videos (0: none; the paper's prior term)", precision=0)
                with gr.Row():
                    frames = gr.Number(world["num_frames"], label="frames", precision=0)
                    height = gr.Number(world["height"], label="height", precision=0)
                    width = gr.Number(world["width"], label="width", precision=0)
            with gr.Row():
                start = gr.Button("Start", variant="primary", elem_id="customize-start")
                cancel = gr.Button("Cancel", variant="stop", elem_id="customize-cancel")
                resume = gr.Button("Resume", elem_id="customize-resume")
        with gr.Column(scale=1):
            progress = gr.HTML("<p>No customization started yet.</p>", elem_id="customize-progress")
            status = gr.Markdown(elem_id="customize-status")
            loss = gr.LinePlot(x="step", y="loss", label="loss", height=220)
            commands = gr.Code(label="the commands it runs", language="shell", wrap_lines=True)
            use = gr.Button("use in Generate")
    values = [
        name,
        model,
        motion_adapter,
        prompt,
        identifier,
        uploads,
        images,
        method,
        t2i_steps,
        customized,
        loras,
        steps,
        num_images,
        num_prior,
        checkpoint_every,
        frames,
        height,
        width,
        sample_steps,
    ]
    model.change(  # its own size, frames and sampling steps, as customize defaults to them
        app.customize_model_changed, [model], [height, width, frames, sample_steps, status], api_visibility="private"
    )
    start.click(app.customize, values, [job_id, plan, status], api_name="customize")
    cancel.click(app.cancel, [job_id], [status], api_name="cancel")
    resume.click(app.resume, [plan], [job_id, status], api_visibility="private")
    example.click(app.example, [], [images, prompt, identifier, name], api_name="example")
    use.click(app.use_in_generate, [job_id], [generate_customization, tabs], api_visibility="private")
    return job_id, announced, progress, loss, commands


def layout(app: App) -> gr.Blocks:
    try:
        world = native_settings(str(shipped_model()))  # the page opens on the first world model
    except StillMovingError:  # an install without the world's weights: the fallbacks (SD's size, AnimateDiff's clip)
        world = native_settings("")
    with gr.Blocks(title="Still-Moving") as page:
        gr.Markdown(INTRO)
        with gr.Tabs() as tabs:
            with gr.Tab("Generate", id="generate"):
                settings, customization = generate_tab(app, world)
            with gr.Tab("Compare", id="compare"):
                compare_tab(app, settings)
            with gr.Tab("Customize", id="customize"):
                job_id, announced, progress, loss, commands = customize_tab(app, world, customization, tabs)
        table = gr.Dataframe(
            queue_table(app.queue), label="queue (one job at a time)", interactive=False, elem_id="queue"
        )
        timer = gr.Timer(1.0)
        timer.tick(
            app.tick,
            [job_id, announced],
            [table, progress, loss, commands, customization, announced],
            api_visibility="private",
            show_progress="hidden",
        )
        gr.api(app.job, api_name="job")
        gr.api(app.jobs, api_name="jobs")
    return page
