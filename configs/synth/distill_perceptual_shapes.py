# Second distillation stage (InstaFlow's order: L2 first, then a perceptual loss) on the shapes data at
# 32 px: the one-step model of configs/synth/distill_shapes.py trained further on the same reflow pairs
# with L2 plus a perceptual distance in the features of our own CAM classifier of the real images
# (wsss.synth.flow.perceptual: LPIPS's recipe, unit-length features of its two backbone stages, without
# LPIPS's learned weights, since no pretrained VGG can be used here). The classifier is the judge of
# tools/eval_generator.py too, so its fidelity figures favour this model: report them beside KID.
#   python tools/train.py configs/synth/distill_perceptual_shapes.py --work-dir work_dirs/distill_perceptual \
#       --data-root work_dirs/rf1_pairs --load-from work_dirs/distill \
#       --cfg-options model.perceptual.checkpoint=work_dirs/cam
_base_ = ["distill_shapes.py"]

model = dict(
    name="rf2-distilled-perceptual",
    perceptual=dict(config="configs/bas/cam_shapes.py", checkpoint="work_dirs/cam", size=96, weight=1.0),
)
load_from = "work_dirs/distill"
load_from_hint = "train configs/synth/distill_shapes.py first, or pass --load-from its work dir"

max_iters = 500
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
