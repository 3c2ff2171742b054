"""`stillmoving ui`: a local web app (gradio) over the library: generate with the motion-scale slider, customize
with live progress, cancel and resume, compare naive injection with Still-Moving. Offline on the embedded world
by default; it reads only the folders it is given and listens on 127.0.0.1 unless told otherwise.

gradio is an optional extra (`pip install "stillmoving[ui]"`, or `pip install "gradio>=6.31"`); this module imports it
only in `serve`.
"""

from __future__ import annotations

import os
from pathlib import Path

from stillmoving.errors import StillMovingError

INSTALL = 'pip install "gradio>=6.31"'  # the `ui` extra; written without brackets, which rich would read as markup


def require_gradio() -> None:
    """One clear line when the optional extra is missing."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise StillMovingError(
            f"the web app needs gradio, which is not installed; install it with: {INSTALL}"
        ) from None


def make_app(output: Path, readable: list[Path]):
    """The gradio page over `output` (written) and `readable` (read) folders, and its `App` (handlers, queue)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves the machine
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    require_gradio()
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from stillmoving.ui.app import App, build
    from stillmoving.ui.folders import check_folders

    diffusers_logging.disable_progress_bar()  # a model load per new set of files; the page shows the state
    transformers_logging.disable_progress_bar()
    app = App(check_folders(output, readable))
    return build(app), app


def serve(output: Path, readable: list[Path], host: str = "127.0.0.1", port: int = 7860, block: bool = True):
    """Start the web app; with `block=False` return (page, app, url) with the server running in a thread."""
    from stillmoving.ui.app import CSS, THEME

    page, app = make_app(output, readable)
    page.queue(default_concurrency_limit=None)  # handlers wait on the app's own one-at-a-time queue
    folders = app.folders
    _, url, _ = page.launch(
        server_name=host,
        server_port=port,
        prevent_thread_lock=not block,
        ssr_mode=False,
        allowed_paths=[str(folders.output.resolve())],
        theme=THEME,
        css=CSS,
        quiet=not block,
        share=False,
        inbrowser=False,
    )
    return page, app, url
