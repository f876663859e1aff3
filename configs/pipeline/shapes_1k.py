# The shapes pipeline with twice the data: 1,000 training and 200 validation images, the same models
# and schedules as shapes.py.
#   python tools/run_pipeline.py configs/pipeline/shapes_1k.py --work-dir work_dirs/shapes_1k
_base_ = ["./shapes.py"]

stages = dict(data=dict(n_train=1000, n_val=200))
