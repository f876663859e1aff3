# The shapes pipeline in the low-data regime: 300 training and 80 validation images drawn at 64 px,
# the same models and step-counted schedules as shapes.py (every image is seen at 96 px, so the
# networks meet objects at the scale the recipes were made for). Harder data or another draw:
#   python tools/run_pipeline.py configs/pipeline/shapes_small.py --work-dir work_dirs/small_hard \
#       --cfg-options stages.data.difficulty=hard stages.data.seed=1
_base_ = ["./shapes.py"]

stages = dict(data=dict(n_train=300, n_val=80, size=64))
