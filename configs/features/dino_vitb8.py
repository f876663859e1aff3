# DINO ViT-B/8 as a frozen feature model (wsss.features.vit.DinoViT): last-layer patch tokens,
# D = 768 at stride 8. Weights only from a local file: the DINO release dino_vitbase8_pretrain.pth
# (or a timm vit_base_patch8_224 state dict). No training; extract directly:
#
#   python tools/extract_features.py configs/features/dino_vitb8.py --out work_dirs/voc_dino \
#       --data-root data/VOCdevkit/VOC2012 --split train_aug --scales 1.0 --flip \
#       --cfg-options model.weights=checkpoints/dino_vitbase8_pretrain.pth
_base_ = ["../_base_/datasets/voc.py"]

model = dict(type="DinoViT", arch="vit_base_patch8_224", weights="checkpoints/dino_vitbase8_pretrain.pth")
