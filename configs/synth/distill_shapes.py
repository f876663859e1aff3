# One-step distillation of the 2-rectified flow (configs/synth/rf2_shapes.py) on the shapes data at 32 px:
# starting from the 2-RF weights, train v so that x0 + v(x0, 0 | c) matches the 1-RF ODE sample x1 of
# the reflow pairs, with the L2 loss (the flow loss at t = 0 only; METHODS.md section 3). Sampled with
# one Euler step at guidance 1: one network call per image.
#   python tools/train.py configs/synth/distill_shapes.py --work-dir work_dirs/distill \
#       --data-root work_dirs/rf1_pairs --load-from work_dirs/rf2
_base_ = ["rf2_shapes.py"]

model = dict(name="rf2-distilled", time_sampling="zero", default_steps=1)
load_from = "work_dirs/rf2"
load_from_hint = "train configs/synth/rf2_shapes.py first, or pass --load-from its work dir"

max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters + 1)
