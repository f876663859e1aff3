# The schedule of the shapes (CPU) recipes, counted in optimizer steps: the same number of steps
# whatever the dataset's size (300 images get as many updates as 2,000), poly decay to 0 at max_iters
# times a linear warm-up over the first warmup_iters (the runner ends the scheduler there, so --cfg-options train_cfg.max_iters=N
# stretches it). Validation and a checkpoint every val_interval steps and at the last one. It brings the
# shared runtime with it (hooks and logs counted in steps), so configs list it instead of default_runtime.
_base_ = ["../default_runtime.py"]

max_iters = 500
val_interval = 100
warmup_iters = 50

optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="AdamW", lr=2e-3, weight_decay=1e-4))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=warmup_iters),
    dict(type="PolyLR", power=0.9, eta_min=0.0, by_epoch=False, begin=0),
]
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
default_hooks = dict(
    checkpoint=dict(
        type="CheckpointHook", by_epoch=False, interval=val_interval, max_keep_ckpts=1, save_last=True
    ),
    logger=dict(type="LoggerHook", interval=10),
)
log_processor = dict(by_epoch=False, window_size=10)
