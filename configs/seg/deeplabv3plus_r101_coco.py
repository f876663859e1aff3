# DeepLabV3+ (ResNet-101) on MS COCO 2014 pseudo labels: the VOC recipe with 81 classes.
#
# Data: the VOC-layout folder written by tools/prepare_coco.py from instances_train2014.json and
# instances_val2014.json (split lists train2014.txt / val2014.txt, class_names.txt with 81 names,
# cls_labels.json). Pseudo labels for train2014 as in the VOC config (absolute path, or inside data_root):
#   --cfg-options train_dataloader.dataset.label_dir=PATH
# Schedule: no published number for this network on COCO; 20 epochs at batch 16 (~100k iterations
# on 82,081 images) is our choice, evaluated every 5 epochs (val2014 has 40,137 images).
_base_ = ["./deeplabv3plus_r101_voc.py"]

data_root = "data/coco"

num_classes = 81
max_epochs = 20

model = dict(num_classes=num_classes)

# The dataset of ../_base_/datasets/coco.py (images reached through the per-split links); training
# reads the pseudo labels as in the VOC recipe, validation the ground truth.
train_dataloader = dict(
    dataset=dict(data_root=data_root, classes="coco", split="train2014", img_dir="train2014")
)
val_dataloader = dict(dataset=dict(data_root=data_root, classes="coco", split="val2014", img_dir="val2014"))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=5))
