# DeepLabV3+ (ResNet-101) on MS COCO 2014 pseudo labels: the VOC recipe (deeplabv3plus_r101_voc.py)
# with 81 classes, on the folder tools/prepare_coco.py writes (../_base_/datasets/coco.py: split lists
# train2014.txt / val2014.txt, class_names.txt, images through the per-split links).
# Pseudo labels for train2014 as in the VOC config (absolute path, or inside data_root):
#   --cfg-options train_dataloader.dataset.label_dir=PATH
# Schedule: no published number for this network on COCO; 20 epochs at batch 16 (~100k iterations
# on 82,081 images) is our choice, evaluated every 5 epochs (val2014 has 40,137 images).
_base_ = [
    "../_base_/models/deeplabv3plus_r101.py",
    "../_base_/datasets/coco.py",
    "../_base_/schedules/poly_10e.py",
    "../_base_/default_runtime.py",
]

max_epochs = 20
model = dict(num_classes=81, backbone_checkpoint="pretrained/resnet101.pth")
train_pipeline = [
    dict(type="RandomScale", scale_range=(0.5, 2.0)),
    dict(type="HorizontalFlip", p=0.5),
    dict(type="ColorJitter", brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1, p=0.8),
    dict(type="PadCrop", size=512),
]
train_dataloader = dict(
    batch_size=16,
    drop_last=True,  # a last batch of one image would break BatchNorm in ASPP's pooling branch
    dataset=dict(label_dir="pseudo_labels", pipeline=train_pipeline, skip_corrupt=True),
)
custom_hooks = [dict(type="SkippedImagesHook")]
val_evaluator = dict(type="SegIoUMetric")
test_evaluator = val_evaluator
optim_wrapper = dict(
    optimizer=dict(type="SGD", lr=1e-3, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(custom_keys={"decoder": dict(lr_mult=10.0), "segmentation_head": dict(lr_mult=10.0)}),
)
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(checkpoint=dict(interval=5, save_best="mIoU", rule="greater"))
