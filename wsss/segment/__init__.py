"""Segmentation stage: DeepLab segmenters, their pluggable losses, and inference."""
