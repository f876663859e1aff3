# CAM baseline on PASCAL VOC 2012 train_aug: ResNet-50 (output stride 16), 448 crops, batch 16,
# 10 epochs, SGD with poly decay, lr 0.005 and 10x for the classifier.
_base_ = [
    "../_base_/models/cam_r50.py",
    "../_base_/datasets/voc.py",
    "../_base_/schedules/poly_10e.py",
    "../_base_/default_runtime.py",
]

val_evaluator = dict(type="MultiLabelMAP")
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(lr=0.005, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={"classifier": dict(lr_mult=10.0)}),
)
