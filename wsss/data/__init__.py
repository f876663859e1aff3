"""Data layer: VOC-layout datasets, label files, image loading, augmentation.

Kept free of imports so light tools (make_shapes, prepare_coco) start without torch.
"""
