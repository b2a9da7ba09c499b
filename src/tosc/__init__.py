"""tosc: task-oriented image semantic communication (TOSC-SR and its baselines).

The package layout follows the communication chain:

    data -> source_coding (learned, classic) -> channel (digital, analog)
         -> tasks -> evaluation, with theory beside it.
"""

import warnings

__version__ = "0.1.0"

# CompressAI 1.2.6 triggers deprecation notices from torch at import time (torch.jit.script,
# torch.cuda.amp.autocast in its video models, which tosc does not use). They are not the
# user's concern and would break the one-line error contract of the CLI.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.autocast.*", category=FutureWarning)

from .errors import ToscError  # noqa: E402

__all__ = ["__version__", "ToscError"]
