# Dense features learnt from scratch on the shapes images, for MARS on a CPU (wsss.features.scratch):
# IIC's mutual information between an image and a colour-jittered, mirrored view, on a small CNN
# at stride 4 (24x24 features at 96 px); MARS reads its hypercolumn (16 + 32 + 64 = 112 channels).
# Images only: the model never reads a label. 300 steps of batch 16: about 2 minutes on 2 cores.
#
#   python tools/train.py configs/features/scratch_shapes.py --work-dir work_dirs/features --data-root data/shapes
#   python tools/extract_features.py configs/features/scratch_shapes.py work_dirs/features --out work_dirs/feats
_base_ = [
    "../_base_/datasets/shapes.py",
    "../_base_/schedules/shapes_iters.py",
]

model = dict(type="IICFeatureNet", feature_dim=64, width=16, clusters=12, overclusters=36, displacement=1,
             jitter=0.4, noise=0.1)  # fmt: skip
train_dataloader = dict(batch_size=16)
train_cfg = dict(max_iters=300, val_interval=300)
# No validation: there are no labels to score features against while training (tools/eval_features.py
# probes them afterwards).
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
default_hooks = dict(checkpoint=dict(interval=300))
