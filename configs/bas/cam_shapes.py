# CAM baseline on the shapes dataset, small enough for a CPU: ResNet-18 from scratch at 96 px,
# output stride 8 (12x12 maps). tools/run_pipeline.py trains it first and starts BAS from it.
_base_ = [
    "../_base_/models/cam_r50.py",
    "../_base_/datasets/shapes.py",
    "../_base_/schedules/poly_10e.py",
    "../_base_/default_runtime.py",
]

model = dict(num_classes=7, backbone=dict(name="resnet18", output_stride=8, checkpoint=None))
val_evaluator = dict(type="MultiLabelMAP")
test_evaluator = val_evaluator

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(
    optimizer=dict(lr=0.05, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={"classifier": dict(lr_mult=10.0)}),
)
default_hooks = dict(logger=dict(interval=10))
