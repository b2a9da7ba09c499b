"""tosc: task-oriented image semantic communication (TOSC-SR and its baselines).

The package layout follows the communication chain:

    data -> source_coding (learned, classic) -> channel (digital, analog)
         -> tasks -> evaluation, with theory beside it.
"""

__version__ = "0.1.0"

from .errors import ToscError  # noqa: E402

__all__ = ["__version__", "ToscError"]
