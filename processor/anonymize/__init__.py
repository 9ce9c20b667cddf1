"""Anonymization kernels: hide boxes and masks of a BGR frame in place with a named technique and degree."""

from processor.anonymize.regions import apply_boxes, apply_mask, clamp_box
from processor.anonymize.registry import Technique, get_technique, register_technique, technique_names

__all__ = [
    "Technique",
    "apply_boxes",
    "apply_mask",
    "clamp_box",
    "get_technique",
    "register_technique",
    "technique_names",
]
