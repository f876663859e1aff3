# The shapes pipeline with twice the data: 1,000 training and 200 validation images, the same models
# and schedules as shapes.py (20 minutes on a 2-core CPU instead of 11). Measured: BAS seeds 68.3 mIoU,
# CAM seeds 61.6 with the same budget; pseudo labels (BAS seeds + CRF) 84.8; segmenter 72.3 on val
# against 79.1 on ground truth (91%).
#   python tools/run_pipeline.py configs/pipeline/shapes_1k.py --work-dir work_dirs/shapes_1k
_base_ = ["./shapes.py"]

dataset = dict(n_train=1000, n_val=200)
