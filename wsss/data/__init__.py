"""Data layer: VOC-layout datasets, label files, image loading, augmentation."""

from wsss.data.dataset import ImageLabelDataset, wsss_collate
from wsss.data.transforms import AlbuPipeline

__all__ = ["AlbuPipeline", "ImageLabelDataset", "wsss_collate"]
