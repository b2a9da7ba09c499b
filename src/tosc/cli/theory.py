"""``tosc theory ...`` commands (filled in by the theory work)."""

from .app import app  # noqa: F401
