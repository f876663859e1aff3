# MARS on MS COCO 2014 train (82,081 images) with STEGO features (D = 70, ViT-B/8 patch grid): the
# paper's K_fg = K_bg = 2, alpha = 0.4, CRF-refined masks; both passes spread over --workers.
_base_ = ["./mars_shapes.py"]
