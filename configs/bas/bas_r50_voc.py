# BAS on PASCAL VOC 2012 train_aug with the authors' WSSS recipe (the BAS paper and wpy1999/BAS-Extension):
# ResNet-50 with layer3 stride 2 and layer4 stride 1 (output stride 16: 448 px -> 28x28 maps),
# images resized to 512x512 (bicubic), flipped, random 448 crops; batch 16, 10 epochs, SGD with poly
# decay (power 0.9), lr 0.005, weight decay 1e-4, 10x lr for the two new heads (classifier, generator).
# Loss L = L_mcls + 0.2 L_frg + 1.0 L_bas + 1.2 L_ac.
_base_ = [
    "../_base_/models/bas_r50.py",
    "../_base_/datasets/voc.py",
    "../_base_/schedules/poly_10e.py",
    "../_base_/default_runtime.py",
]

# interpolation=2 is cv2.INTER_CUBIC, as the authors' bicubic PIL resize.
train_pipeline = [
    dict(type="Resize", height=512, width=512, interpolation=2),
    dict(type="HorizontalFlip", p=0.5),
    dict(type="PadCrop", size=448),
]
train_dataloader = dict(batch_size=16, dataset=dict(pipeline=train_pipeline))

val_evaluator = dict(type="MultiLabelMAP")
test_evaluator = val_evaluator

# The authors' PolyOptimizer passes weight decay where SGD expects momentum, so their runs used
# momentum 1e-4; we use the ordinary 0.9. Their optimizer also leaves every bias (the BatchNorm
# shifts) untrained; here all parameters train.
optim_wrapper = dict(
    optimizer=dict(type="SGD", lr=0.005, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={"classifier": dict(lr_mult=10.0), "generator": dict(lr_mult=10.0)}),
)
