"""Evaluation: run systems at operating points, score what arrived, write results."""

from .point import OperatingPoint, point_seed, run_point, score_images

__all__ = ["OperatingPoint", "point_seed", "run_point", "score_images"]
