# The shapes pipeline's stages on real photographs: a COCO-layout folder made by tools/prepare_coco.py
# (81 classes, 480-640 px images), every model from random weights at the shapes recipes' sizes
# (images seen at 96 px on their shorter side, so a CPU can train; predictions are scored at the
# original size). Give the folder with --data-root and name its splits below (or with
# --cfg-options splits.train=train2014 splits.val=val2014):
#   python tools/prepare_coco.py --ann annotations/instances_train2017.json --images train2017 --out data/coco
#   python tools/prepare_coco.py --ann annotations/instances_val2017.json --images val2017 --out data/coco
#   python tools/run_pipeline.py configs/pipeline/coco_cpu.py --data-root data/coco --work-dir work_dirs/coco_cpu
# A folder with one split only (coco-mini's 80 train2017 images): hold some out as the val split,
#   head -n 60 data/coco/ImageSets/Segmentation/train2017.txt > data/coco/ImageSets/Segmentation/fit.txt
#   tail -n 20 data/coco/ImageSets/Segmentation/train2017.txt > data/coco/ImageSets/Segmentation/holdout.txt
#   ... --cfg-options splits.train=fit splits.val=holdout
# COCO has no context masks, so the context shares are left out; MARS runs as on shapes. With a few
# hundred images and random weights the figures are low: the point is that real files of every size
# and 81 classes flow through every stage, and the report says how little was learnt. The learning
# floors of shapes.py are off here: nothing reaches them from scratch on so few photographs.
# Fewer steps than shapes.py (60 photographs are 80 epochs in 300 steps of 16), so that coco-mini runs
# in about a quarter of an hour on 2 cores; give a real COCO split the shapes budgets or more.
_base_ = ["./shapes.py"]

splits = dict(train="train2017", val="val2017")
stages = dict(
    data=None,  # the data come from --data-root
    train_cam=dict(iters=300, floor=None),
    train_bas=dict(iters=150),
    train_cam_more=dict(iters=150),
    train_features=dict(iters=150),
    train_seg=dict(iters=200),
    train_seg_mars=dict(iters=200),
    train_upper=dict(iters=200, floor=None),
    eval_pseudo=dict(context=False),
    eval_debiased=dict(context=False),
    context_seg=None,
    context_seg_mars=None,
)
report = dict(context=[])
