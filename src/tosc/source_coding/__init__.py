"""Source coding: images to bytes and back.

- :mod:`tosc.source_coding.classic`: standard image codecs (JPEG, JPEG 2000, WebP, HEVC intra
  via HEIF, AVIF, JPEG XL, VVC) behind one interface, with payload measurement and rate
  matching to a byte budget.
- :mod:`tosc.source_coding.learned`: the learned (TOSC-SR) codec.

Subpackages are imported on demand, so importing one does not load the other.
"""
