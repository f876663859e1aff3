# BAS on MS COCO 2014 (81 classes with background), converted to VOC layout by tools/prepare_coco.py
# (train2014 and val2014 into one folder, ../_base_/datasets/coco.py). The public code has no COCO
# recipe, so this is the VOC one of bas_r50_voc.py (ResNet-50 output stride 16, 512x512 resize, flip,
# 448 crops, batch 16, 10 epochs, SGD poly lr 0.005, 10x for the heads) with an 80-way head.
_base_ = [
    "../_base_/models/bas_r50.py",
    "../_base_/datasets/coco.py",
    "../_base_/schedules/poly_10e.py",
    "../_base_/default_runtime.py",
]

model = dict(num_classes=81)
train_pipeline = [
    dict(type="Resize", height=512, width=512, interpolation=2),
    dict(type="HorizontalFlip", p=0.5),
    dict(type="PadCrop", size=448),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))
val_evaluator = dict(type="MultiLabelMAP")
test_evaluator = val_evaluator
optim_wrapper = dict(
    optimizer=dict(type="SGD", lr=0.005, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={"classifier": dict(lr_mult=10.0), "generator": dict(lr_mult=10.0)}),
)
