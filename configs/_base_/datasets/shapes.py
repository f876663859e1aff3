# The procedural shapes dataset (wsss.data.shapes): square images, 6 object classes, VOC layout,
# class_names.txt and cls_labels.json in the root. Sized for CPU runs. Every image is seen at
# crop_size (96 px) on its shorter side, in training and validation alike, so drawings of 64 or 128 px
# meet the networks at the scale the recipes were made for; tools/test.py scores at the original size.
dataset_type = "ImageLabelDataset"
data_root = "data/shapes"
crop_size = 96

train_pipeline = [
    dict(type="ResizeShorter", size=crop_size),
    dict(type="RandomScale", scale_range=(0.75, 1.25)),
    dict(type="HorizontalFlip", p=0.5),
    dict(type="PadCrop", size=crop_size),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(type=dataset_type, data_root=data_root, split="train", pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    sampler=dict(type="DefaultSampler", shuffle=False, round_up=False),  # no repeated samples in DDP metrics
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split="val",
        pipeline=[dict(type="ResizeShorter", size=crop_size)],
    ),
)
test_dataloader = val_dataloader
