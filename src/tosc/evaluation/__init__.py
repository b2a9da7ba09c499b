"""Evaluation: run systems at operating points, score what arrived, write results and reports."""

from .grid import GridSpec, grid_points, merge_results, parse_shard, run_grid
from .point import OperatingPoint, item_task_networks, point_seed, run_point, score_images
from .report import write_report

__all__ = ["OperatingPoint", "item_task_networks", "point_seed", "run_point", "score_images", "GridSpec", "grid_points", "run_grid",
           "merge_results", "parse_shard", "write_report"]
