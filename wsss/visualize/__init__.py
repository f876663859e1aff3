"""Figures: label and score overlays, image grids, and measured curves."""
