"""User-facing errors: one clear line, no traceback, a non-zero exit from the CLI."""


class StillMovingError(Exception):
    """A problem with the user's input or files; the message is one line that says what and where."""

    exit_code = 2
