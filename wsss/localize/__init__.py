"""Localization stage: BAS and CAM localizers, multi-scale seeds and the seed file format."""
