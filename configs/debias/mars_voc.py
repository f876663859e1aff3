# MARS on PASCAL VOC 2012 train_aug (10,582 images) with STEGO features (D = 70, ViT-B/8 patch grid):
# the paper's K_fg = K_bg = 2, alpha = 0.4, CRF-refined masks. The authors report 10 minutes of
# clustering and 9 of refinement on a 64-core machine; here both passes spread over --workers.
_base_ = ["./mars_shapes.py"]
