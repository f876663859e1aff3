# The shapes pipeline on 1,600 hard training images (smaller objects, colours close to the
# background, stronger textures and noise, occlusion) and 200 validation images at 96 px, the same
# models and step-counted schedules as shapes.py.
#   python tools/run_pipeline.py configs/pipeline/shapes_hard_1600.py --work-dir work_dirs/hard_1600
_base_ = ["./shapes.py"]

stages = dict(data=dict(n_train=1600, n_val=200, size=96, difficulty="hard"))
