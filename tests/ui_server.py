"""A running `stillmoving ui` server on a free local port, for the gradio_client and browser tests."""

import os
import socket
from pathlib import Path

import pytest

ARTIFACTS = Path(os.environ.get("STILLMOVING_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(output: Path, readable: list[Path]):
    """(page, app, url): the web app serving `output` and `readable` from a thread of this process."""
    pytest.importorskip("gradio", reason='the web app is an optional extra: pip install "gradio>=6.31"')
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # the customize commands it starts: one core each, as the tests
    from stillmoving.ui import serve

    return serve(output, readable, port=free_port(), block=False)
