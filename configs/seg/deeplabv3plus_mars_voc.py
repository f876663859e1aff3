# MARS on PASCAL VOC 2012: DeepLabV3+ ResNet-101 (deeplabv3plus_r101_voc.py, the recipe of the
# authors' related code DHR) trained on debiased pseudo labels of train_aug (tools/mars.py: 254 =
# biased), complementing biased pixels with an EMA teacher (decay 0.999 per iteration, the authors'
# value) and the weighted cross-entropy. Biased pixels are ignored for the first 2,000 iterations
# (of ~66k), while the teacher is still poor: our choice, the paper does not say when it starts.
#   --cfg-options train_dataloader.dataset.label_dir=$PWD/work_dirs/debiased
_base_ = ["./deeplabv3plus_r101_voc.py"]

model = dict(
    loss=dict(_delete_=True, type="MARSComplementCE", warmup_iters=2000, weighted=True), ema_decay=0.999
)
train_dataloader = dict(dataset=dict(allow_biased=True))
custom_hooks = [dict(type="SkippedImagesHook"), dict(type="EMATeacherHook")]
