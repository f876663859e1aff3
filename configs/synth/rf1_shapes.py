# 1-rectified flow on the shapes data at 32 px (wsss.synth.flow): a small text encoder and pixel-space
# UNet trained from scratch, noise at t = 0, images at t = 1, velocity regression
# || v(x_t, t | caption) - (x1 - x0) ||^2 with 10 % of captions dropped for classifier-free guidance.
# Sized for about ten minutes on a shared 2-core CPU (one torch thread was faster there than two):
# a 0.5 M-parameter UNet (16/32/64 channels), batch 32, 2,400 AdamW steps (lr 1e-3, 50-step warm-up,
# poly decay, gradients clipped at 1), no validation (tools/eval_generator.py measures a trained model). It is sampled with
# 20 Euler steps at guidance 2; tools/make_reflow_pairs.py turns it into the pairs of configs/synth/rf2_shapes.py.
#   python tools/train.py configs/synth/rf1_shapes.py --work-dir work_dirs/rf1 --data-root data/shapes32
# 64 px: configs/synth/rf1_shapes64.py (one more UNet level:
# channels 16/32/64/64, cross-attention at the two lowest; see the UNet docstring).
_base_ = ["../_base_/schedules/shapes_iters.py"]

image_size = 32
data_root = "data/shapes"

model = dict(
    type="RectifiedFlow",
    image_size=image_size,
    name="rf1",
    cond_dropout=0.1,
    time_sampling="uniform",
    default_steps=20,
    default_guidance=2.0,
    text_encoder=dict(dim=64, layers=2, heads=4, max_words=256, max_length=48),
    unet=dict(channels=(16, 32, 64), attention=(False, True, True)),
)

train_dataloader = dict(
    batch_size=32,
    num_workers=0,  # 32-px JPEGs: reading takes a few ms a batch, no worker processes needed
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(
        type="CaptionedImageDataset",
        data_root=data_root,
        split="train",
        pipeline=[
            dict(type="ResizeShorter", size=image_size),
            dict(type="PadCrop", size=image_size),
            dict(type="HorizontalFlip", p=0.5),
        ],
    ),
)
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None

max_iters = 2400
optim_wrapper = dict(optimizer=dict(type="AdamW", lr=1e-3, weight_decay=0.0), clip_grad=dict(max_norm=1.0))
train_cfg = dict(type="IterBasedTrainLoop", max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(checkpoint=dict(interval=500), logger=dict(interval=50))
custom_hooks = [dict(type="VocabularyHook")]
