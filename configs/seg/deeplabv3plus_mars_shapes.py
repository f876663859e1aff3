# MARS's complementing on the shapes data: the segmenter of deeplabv3plus_shapes.py trained on
# debiased labels (tools/mars.py: 254 = biased), where biased pixels take its EMA teacher's label with
# the teacher's confidence as the weight of a weighted cross-entropy (wsss.segment.losses.MARSComplementCE).
#   --cfg-options train_dataloader.dataset.label_dir=$PWD/work_dirs/debiased
# The teacher follows the student with decay 0.99 per step, not the authors' 0.999: with 300 steps the
# 0.999 teacher would still be 74% its random start at the end (0.999^300); 0.99 averages about the
# last 100 steps. Biased pixels are ignored for the first 100 steps, while the teacher is still poor.
_base_ = ["./deeplabv3plus_shapes.py"]

model = dict(
    loss=dict(_delete_=True, type="MARSComplementCE", warmup_iters=100, weighted=True), ema_decay=0.99
)
train_dataloader = dict(dataset=dict(allow_biased=True))
custom_hooks = [dict(type="SkippedImagesHook"), dict(type="EMATeacherHook")]
