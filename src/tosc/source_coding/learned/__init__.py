"""The learned digital codec of TOSC-SR: transforms, entropy model, bitstreams, training."""

from .codec import LearnedCodec, freeze_entropy_tables
from .model import CodecConfig, TinyImageCodec
from .zoo import find_codec_by_id, list_codecs

__all__ = ["LearnedCodec", "freeze_entropy_tables", "CodecConfig", "TinyImageCodec", "find_codec_by_id",
           "list_codecs"]
