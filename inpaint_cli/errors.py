"""The one exception a user sees: a message on one line, no traceback."""


class InpaintError(Exception):
    """Anything a user can cause or fix: bad paths, bad images, wrong weights, bad options."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
