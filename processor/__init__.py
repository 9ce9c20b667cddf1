"""Anonymization stream processor for camera data."""

__version__ = "0.1.0"
