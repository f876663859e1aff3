# SGD with poly learning-rate decay (power 0.9) over 10 epochs, updated every iteration.
# The scheduler's `end` is left out so it follows train_cfg.max_epochs in configs that change it.
max_epochs = 10

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="SGD", lr=0.01, momentum=0.9, weight_decay=1e-4),
)
param_scheduler = [
    dict(type="PolyLR", power=0.9, eta_min=0.0, by_epoch=True, convert_to_iter_based=True),
]

train_cfg = dict(type="EpochBasedTrainLoop", max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type="ValLoop")
test_cfg = dict(type="TestLoop")
