# 1-rectified flow at 64 px: configs/synth/rf1_shapes.py with one more UNet level (16/32/64/64 channels,
# cross-attention at 16 x 16 and 8 x 8) and a 64-px pipeline; about four times the compute per step.
#   python tools/make_shapes.py --out data/shapes64 --n-train 1000 --n-val 100 --size 64
#   python tools/train.py configs/synth/rf1_shapes64.py --work-dir work_dirs/rf1_64 --data-root data/shapes64
_base_ = ["rf1_shapes.py"]

image_size = 64
model = dict(
    image_size=image_size, unet=dict(channels=(16, 32, 64, 64), attention=(False, False, True, True))
)
train_dataloader = dict(
    dataset=dict(
        pipeline=[
            dict(type="ResizeShorter", size=image_size),
            dict(type="PadCrop", size=image_size),
            dict(type="HorizontalFlip", p=0.5),
        ]
    )
)
