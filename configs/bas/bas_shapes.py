# BAS on the shapes dataset, small enough for a CPU: ResNet-18 from scratch at 96 px (6x6 maps at
# output stride 16), the same data, backbone and schedule as cam_shapes.py so the two compare directly.
_base_ = [
    "../_base_/datasets/shapes.py",
    "../_base_/schedules/poly_10e.py",
    "../_base_/default_runtime.py",
]

model = dict(
    type="BAS",
    num_classes=7,
    backbone=dict(name="resnet18", output_stride=16, checkpoint=None),
    frg_weight=0.2,
    bas_weight=1.0,
    ac_weight=1.2,
    data_preprocessor=dict(type="SegDataPreprocessor"),
)
val_evaluator = dict(type="MultiLabelMAP")
test_evaluator = val_evaluator

max_epochs = 6
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(lr=0.02, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={"classifier": dict(lr_mult=10.0), "generator": dict(lr_mult=10.0)}),
)
default_hooks = dict(logger=dict(interval=10))
