# BAS on MS COCO 2014 (81 classes with background), converted to VOC layout by tools/prepare_coco.py
# (train2014 and val2014 into one folder). The public code has no COCO recipe, so this is the VOC one
# of bas_r50_voc.py (ResNet-50 output stride 16, 512x512 resize, flip, 448 crops, batch 16, 10 epochs,
# SGD poly lr 0.005, 10x for the heads) with the COCO data and an 80-way head.
_base_ = ["./bas_r50_voc.py"]

data_root = "data/coco"
model = dict(num_classes=81)
# The dataset of ../_base_/datasets/coco.py (images reached through the per-split links).
coco_split = dict(data_root=data_root, classes="coco", label_dir="SegmentationClass")
train_dataloader = dict(dataset=dict(**coco_split, split="train2014", img_dir="train2014"))
val_dataloader = dict(dataset=dict(**coco_split, split="val2014", img_dir="val2014"))
test_dataloader = val_dataloader
