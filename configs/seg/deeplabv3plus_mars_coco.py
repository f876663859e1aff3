# MARS on MS COCO 2014: DeepLabV3+ ResNet-101 (deeplabv3plus_r101_coco.py) on debiased pseudo labels of
# train2014 with the EMA teacher (decay 0.999) and the weighted cross-entropy, as deeplabv3plus_mars_voc.py.
_base_ = ["./deeplabv3plus_r101_coco.py"]

model = dict(
    loss=dict(_delete_=True, type="MARSComplementCE", warmup_iters=2000, weighted=True), ema_decay=0.999
)
train_dataloader = dict(dataset=dict(allow_biased=True))
custom_hooks = [dict(type="SkippedImagesHook"), dict(type="EMATeacherHook")]
