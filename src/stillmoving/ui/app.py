"""The web app's page: Generate (with the motion-scale slider), Compare, Customize, and the job queue.

Handlers only translate between widgets and `work`/`jobs`; a bad input comes back as a message in the page
(`in_page`), never as a stack trace.
"""

from __future__ import annotations

import functools
import html
import shutil
import traceback
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pandas as pd

from stillmoving.errors import StillMovingError
from stillmoving.ui import work
from stillmoving.ui.folders import Folders, check_name, customization_choices, video_model
from stillmoving.ui.jobs import FINISHED, Job, JobQueue, run_command
from stillmoving.validation import native_settings

EXAMPLE_PROMPT = "a red circle moving left quickly on a gray background"
EXAMPLE_IMAGES = 8  # rendered images of the world's held-out star for the Customize example
CSS = ".pixelated video, .pixelated img { image-rendering: pixelated; }"
# System fonts only: the page loads nothing from outside this machine.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def message(error: str) -> str:
    return f"**error:** {error}"


def in_page(*fallback):
    """Run a handler; a StillMovingError (bad input) or a bug becomes `fallback` plus one message line."""

    def wrap(handler):
        @functools.wraps(handler)
        def run(*args):
            try:
                return handler(*args)
            except StillMovingError as error:
                return (*fallback, message(str(error)))
            except Exception as error:  # a bug: the trace goes to the console, one line to the page
                traceback.print_exc()
                return (*fallback, message(f"{type(error).__name__}: {error}"))

        return run

    return wrap


def wait(job: Job):
    """Block until the job has run; its result, or its error raised as a message."""
    job.finished.wait()
    if job.error:
        raise StillMovingError(job.error)
    return job.result


def queue_table(queue: JobQueue) -> pd.DataFrame:
    rows = [
        [job.id, job.kind, job.title, job.state, f"{job.step}/{job.total}" if job.total else job.phase]
        for job in reversed(queue.jobs()[-12:])
    ]
    return pd.DataFrame(rows, columns=["job", "kind", "what", "state", "progress"])


def job_summary(job: Job) -> dict:
    """What gradio_client and the page read about one job."""
    return dict(
        id=job.id,
        kind=job.kind,
        state=job.state,
        phase=job.phase,
        step=job.step,
        total=job.total,
        losses=job.losses,
        commands=job.commands,
        error=job.error,
        result=job.result,
    )


def progress_html(job: Job | None) -> str:
    if job is None:
        return "<p>No customization started yet.</p>"
    loss = f", loss {job.losses[-1][1]:.4f}" if job.losses else ""
    bar = f"<progress value='{job.step}' max='{max(job.total, 1)}' style='width:100%'></progress>"
    words = (
        f"{job.state}: {html.escape(job.phase)} {job.step}/{job.total}{loss}"
        if job.total
        else f"{job.state}: {html.escape(job.phase or 'waiting for the queue')}"
    )
    error = f"<p><b>error:</b> {html.escape(job.error)}</p>" if job.error and job.error != "cancelled" else ""
    return f"<div id='customize-state' data-state='{job.state}'>{bar}<p>{words}</p>{error}</div>"


class App:
    """The page's handlers over one output folder, the configured folders and one job queue."""

    def __init__(self, folders: Folders, queue: JobQueue | None = None):
        self.folders, self.queue, self.pipelines = folders, queue or JobQueue(), work.Pipelines()

    # ------------------------------------------------------------------ generate and compare

    def generation(
        self,
        video_model_choice,
        customization,
        motion_adapter,
        prompt,
        negative_prompt,
        seed,
        num_frames,
        height,
        width,
        steps,
        guidance_scale,
        motion_scale,
        base_t2i="",
    ) -> work.Generation:
        return work.Generation(
            prompt=prompt or "",
            video_model=video_model_choice or "",
            customization=customization or "",
            motion_adapter=motion_adapter or "",
            negative_prompt=negative_prompt or "",
            seed=int(seed),
            num_frames=int(num_frames),
            height=int(height),
            width=int(width),
            steps=int(steps),
            guidance_scale=float(guidance_scale),
            motion_scale=float(motion_scale),
            base_t2i=base_t2i or "",
        )

    @in_page(None, None, "")
    def generate(self, *values):
        gen = self.generation(*values)
        work.check_generation_inputs(self.folders, gen)  # bad input: a message now, not after the queue
        job = self.queue.submit(
            "generate",
            f"{gen.prompt} (seed {gen.seed}, motion {gen.motion_scale:g})",
            lambda job: work.generate(self.folders, self.pipelines, gen),
        )
        video: work.Video = wait(job)
        return (
            str(video.mp4),
            [str(video.mp4), str(video.gif)],
            video.command,
            f"made {video.mp4.name} (motion scale {gen.motion_scale:g})",
        )

    @in_page(None, None, None, None, None, "")
    def compare(self, *values):
        gen = work.recorded_sampling(self.folders, self.generation(*values))  # as work.compare samples it
        work.check_generation_inputs(self.folders, replace(gen, motion_scale=0.0))
        job = self.queue.submit(
            "compare", f"{gen.prompt} (seed {gen.seed})", lambda job: work.compare(self.folders, self.pipelines, gen)
        )
        videos: list[work.Video] = wait(job)
        naive = [str(v.mp4) for v in videos if v.label == "naive injection"]
        scales = [v for v in videos if v.label != "naive injection"]
        commands = "\n".join(f"# {v.label}\n{v.command}" for v in videos)
        ours = scales[1].label.split(",")[0]  # Still-Moving or delta injection
        alone = " (no customization chosen: the video model's own motion scales only)"
        note = f": naive injection and {ours}" if naive else alone
        return (
            naive[0] if naive else None,
            str(scales[1].mp4),
            *(str(v.mp4) for v in scales),
            commands + "\n",
            f"compared {len(videos)} videos{note}",
        )

    def model_changed(self, choice):
        """The chosen video model's own size, frames, steps and guidance; a missing one is a message."""
        try:
            settings = native_settings(video_model(self.folders, choice).model)
        except StillMovingError as error:
            return (*[gr.skip()] * 5, message(str(error)))
        return (
            settings["height"],
            settings["width"],
            settings["num_frames"],
            settings["steps"],
            settings["guidance_scale"],
            "",
        )

    def customize_model_changed(self, choice):
        """The Customize tab's video model: its own size, frames and sampling steps (what `customize` would default to;
        the guidance it takes from the model itself); a missing one is a message."""
        height, width, frames, steps, _, status = self.model_changed(choice)
        return height, width, frames, steps, status

    def customization_changed(self, customization):
        """The steps and guidance the chosen customization recorded (what `generate --customization` samples with by
        default, and all Generate accepts of a few-step setting); the page's own where it records none."""
        try:
            recorded = work.recorded_sampler(self.folders, customization or "")
        except StillMovingError as error:
            return gr.skip(), gr.skip(), message(str(error))
        steps, guidance = (None, None) if recorded is None else (recorded.steps, recorded.guidance_scale)
        return gr.skip() if steps is None else steps, gr.skip() if guidance is None else guidance, ""

    def refreshed_choices(self, current):
        choices = customization_choices(self.folders)
        return gr.update(choices=choices, value=current if current in choices else "(none)")

    # ------------------------------------------------------------------ customize

    def upload(self, name: str, files: list[str]) -> str:
        """Uploaded images copied into the output's images/<name>/ (they are checked as images there)."""
        from stillmoving.data.video_io import check_images

        folder = self.folders.images_dir() / check_name(name)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for i, path in enumerate(files):
            shutil.copyfile(path, folder / f"{i:04d}{Path(path).suffix.lower()}")
        check_images(folder)
        return str(folder)

    def plan(
        self,
        name,
        video_model_choice,
        motion_adapter,
        prompt,
        identifier,
        uploads,
        images,
        t2i_method,
        t2i_steps,
        customized,
        loras,
        steps,
        num_images,
        num_prior_videos,
        checkpoint_every,
        num_frames,
        height,
        width,
        sample_steps,
    ) -> work.CustomizePlan:
        if uploads:
            images = self.upload(name, [getattr(f, "name", f) for f in uploads])
        return work.CustomizePlan(
            name=name or "",
            prompt=prompt or "",
            identifier=identifier or "",
            video_model=video_model_choice or "",
            motion_adapter=motion_adapter or "",
            images=images or "",
            t2i_method=t2i_method,
            t2i_steps=int(t2i_steps),
            customized=customized or "",
            loras=work.parse_loras(loras or ""),
            steps=int(steps),
            num_images=int(num_images),
            num_prior_videos=int(num_prior_videos),
            checkpoint_every=int(checkpoint_every),
            num_frames=int(num_frames),
            height=int(height),
            width=int(width),
            sample_steps=int(sample_steps),
        )

    def submit_plan(self, plan: work.CustomizePlan) -> Job:
        work.check_plan(self.folders, plan)

        def run(job: Job) -> str:
            for command in work.customize_commands(self.folders, plan):  # planned again from the disk: resumes
                run_command(job, command)
            return str(self.folders.customizations_dir() / plan.name)

        return self.queue.submit("customize", f"{plan.name}: {plan.prompt}", run)

    @in_page(None, None)
    def customize(self, *values):
        plan = self.plan(*values)
        job = self.submit_plan(plan)
        return job.id, plan, f"customization {plan.name} queued as job {job.id}"

    @in_page()
    def cancel(self, job_id):
        if job_id is None:
            raise StillMovingError("no customization to cancel")
        job = self.queue.cancel(int(job_id))
        return f"job {job.id}: cancelling" if job.state not in FINISHED else f"job {job.id}: {job.state}"

    @in_page(None)
    def resume(self, plan):
        if plan is None:
            raise StillMovingError("nothing to resume: start a customization first")
        job = self.submit_plan(plan)
        return job.id, f"customization {plan.name} resumed as job {job.id}"

    def example(self):
        """Images of the world's held-out subject (the sks star) to learn from, with its prompt."""
        from stillmoving.world.folders import write_image_folder

        folder = write_image_folder(self.folders.images_dir() / "world-star", EXAMPLE_IMAGES, 0, 32, "star", None)
        return str(folder), "a sks star", "sks", "sks-star"

    def tick(self, job_id, announced):
        """The queue, and the current customization's progress; when it finishes, Generate can pick it."""
        job = self.queue.get(int(job_id)) if job_id is not None else None
        table = queue_table(self.queue)
        if job is None:
            return table, progress_html(None), gr.skip(), gr.skip(), gr.skip(), announced
        plot = pd.DataFrame(job.losses or [(0, float("nan"))], columns=["step", "loss"])
        commands = "\n".join(job.commands) + "\n" if job.commands else ""
        newly_done = job.state == "done" and announced != job.id
        choices = self.refreshed_choices(job.result) if newly_done else gr.skip()
        return table, progress_html(job), plot, commands, choices, job.id if newly_done else announced

    def use_in_generate(self, job_id):
        job = self.queue.get(int(job_id)) if job_id is not None else None
        if job is None or job.state != "done":
            return gr.skip(), gr.Tabs()
        return self.refreshed_choices(job.result), gr.Tabs(selected="generate")

    def job(self, job_id: int) -> dict:
        """API: one job's state, progress, losses, commands and result."""
        return job_summary(self.queue.get(int(job_id)))

    def jobs(self) -> list[dict]:
        """API: every job, oldest first."""
        return [job_summary(job) for job in self.queue.jobs()]


def build(app: App) -> gr.Blocks:
    """The page."""
    from stillmoving.ui.layout import layout

    return layout(app)
