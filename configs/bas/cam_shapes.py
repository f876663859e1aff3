# CAM baseline on the shapes dataset, small enough for a CPU: ResNet-10-T (timm's resnet10t, three-conv
# stem) from scratch at 96 px, output stride 8 (12x12 maps). tools/run_pipeline.py trains it first and
# starts BAS from it.
#
# Optimizer: AdamW, not the paper's SGD. From random weights on 500 images, SGD (lr 0.05, 10x head)
# reaches a validation mAP of 71 after 10 epochs on ResNet-18; AdamW at lr 2e-3 on ResNet-10-T reaches
# 94-96 in 12-16 epochs at twice the speed, and every later stage depends on that classifier.
_base_ = [
    "../_base_/models/cam_r50.py",
    "../_base_/datasets/shapes.py",
    "../_base_/schedules/poly_10e.py",
    "../_base_/default_runtime.py",
]

model = dict(num_classes=7, backbone=dict(name="resnet10t", output_stride=8, checkpoint=None))
val_evaluator = dict(type="MultiLabelMAP")
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(_delete_=True, type="AdamW", lr=2e-3, weight_decay=1e-4))
default_hooks = dict(logger=dict(interval=10))
