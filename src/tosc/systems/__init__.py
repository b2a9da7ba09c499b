"""Complete communication systems, built by name: source coder -> link -> decoder.

Every system sends N images at one operating point (channel kind, SNR, channel
bandwidth ratio) and returns a :class:`Transmission`: the received images, which
of them arrived intact, the bits handed to the channel and the channel uses spent.
``tosc systems`` lists the registered names.
"""

from .base import Transmission, System, build_system, system_names, fallback_image
from . import digital as _digital  # noqa: F401  (registers the digital systems)
from . import analog as _analog  # noqa: F401  (registers the analog JSCC systems)

__all__ = ["Transmission", "System", "build_system", "system_names", "fallback_image"]
