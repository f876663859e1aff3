# BAS on the shapes dataset, small enough for a CPU: ResNet-18 at 96 px, output stride 8 (12x12 maps),
# the same data, backbone and optimizer as cam_shapes.py so the two compare directly.
#
# BAS assumes a backbone that already responds to objects (the paper starts from ImageNet weights).
# From random weights the area loss wins at once: the foreground maps collapse to 0 within the first
# epoch and the guidance loss stays at log(C). Start from a trained CAM instead, as
# tools/run_pipeline.py does:  tools/train.py configs/bas/bas_shapes.py --load-from CAM_CHECKPOINT
_base_ = [
    "../_base_/models/bas_r50.py",
    "../_base_/datasets/shapes.py",
    "../_base_/schedules/poly_10e.py",
    "../_base_/default_runtime.py",
]

model = dict(num_classes=7, backbone=dict(name="resnet18", output_stride=8, checkpoint=None))
val_evaluator = dict(type="MultiLabelMAP")
test_evaluator = val_evaluator

max_epochs = 3
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(lr=0.02, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={"classifier": dict(lr_mult=10.0), "generator": dict(lr_mult=10.0)}),
)
default_hooks = dict(logger=dict(interval=10))
