# BAS for WSOL on CUB-200-2011 with the authors' ResNet-50 recipe (the paper's WSOL variant):
# 224 px input, layer3 at 28x28 (output stride 8), a 2x max-pool, layer4 at 14x14; classifier
# conv3x3 -> 1024, ReLU, conv3x3, ReLU, conv1x1 -> 200; generator conv3x3 + sigmoid on layer3.
# L = L_cls + 0.5 L_frg + L_bas + 1.5 L_ac. SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 1e-3
# for the backbone and 10x for the new heads; 120 epochs, lr x0.1 at epoch 80; batch 32.
# Every 10 epochs (and after the last) the Runner validates localization on the test split with WSOLMetric
# (Top-1/Top-5/GT-known Loc at threshold 0.1, MaxBoxAccV2); tools/eval_wsol.py gives the same figures
# offline for a checkpoint, with other thresholds or top-k.
_base_ = [
    "../_base_/datasets/cub.py",
    "../_base_/default_runtime.py",
]

model = dict(
    type="BASWSOL",
    num_classes=200,
    # ImageNet weights from a local file (timm or torchvision resnet50 state dict); nothing is downloaded.
    backbone=dict(name="resnet50", output_stride=8, checkpoint="pretrained/resnet50.pth"),
    mid_pool=2,
    head_channels=1024,
    frg_weight=0.5,
    bas_weight=1.0,
    ac_weight=1.5,
    topk=1,
    data_preprocessor=dict(type="SegDataPreprocessor"),
)

max_epochs = 120
train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=10)
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="SGD", lr=1e-3, momentum=0.9, nesterov=True, weight_decay=5e-4),
    paramwise_cfg=dict(custom_keys={"classifier": dict(lr_mult=10.0), "generator": dict(lr_mult=10.0)}),
)
param_scheduler = [dict(type="MultiStepLR", milestones=[80], gamma=0.1, by_epoch=True)]
default_hooks = dict(logger=dict(interval=20))
