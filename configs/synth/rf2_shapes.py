# 2-rectified flow (reflow) on the shapes data at 32 px: the 1-RF model of configs/synth/rf1_shapes.py,
# trained further with the same loss on its own fixed pairs (noise x0, its 20-step guided ODE sample x1,
# caption) from tools/make_reflow_pairs.py, which straightens its paths (METHODS.md section 3). It
# starts from the 1-RF weights (as InstaFlow does) and keeps their vocabulary. The pairs carry the
# teacher's guidance, so there is no condition dropout and the model is sampled at guidance 1.
#   python tools/make_reflow_pairs.py configs/synth/rf1_shapes.py work_dirs/rf1 --data-root data/shapes32 \
#       --out work_dirs/rf1_pairs --count 2000
#   python tools/train.py configs/synth/rf2_shapes.py --work-dir work_dirs/rf2 --data-root work_dirs/rf1_pairs \
#       --load-from work_dirs/rf1
_base_ = ["rf1_shapes.py"]

data_root = "work_dirs/rf1_pairs"
model = dict(name="rf2", cond_dropout=0.0, default_steps=4, default_guidance=1.0)
train_dataloader = dict(dataset=dict(_delete_=True, type="ReflowPairDataset", data_root=data_root))
load_from = "work_dirs/rf1"
load_from_hint = "train configs/synth/rf1_shapes.py first, or pass --load-from its work dir"

max_iters = 1200
optim_wrapper = dict(optimizer=dict(lr=5e-4))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
