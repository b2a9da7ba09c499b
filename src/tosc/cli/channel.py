"""``tosc channel ...`` commands (filled in by the channel work)."""

from .app import app  # noqa: F401
