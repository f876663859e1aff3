"""Models: localizers (BAS, CAM), segmenters, and the shared data preprocessor."""

from wsss.models.data_preprocessor import SegDataPreprocessor

__all__ = ["SegDataPreprocessor"]
