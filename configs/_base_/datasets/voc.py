# PASCAL VOC 2012 for image-level WSSS: train on train_aug (10,582 images, SBD-augmented masks),
# validate on val (1,449). Image-level labels come from cls_labels.json, the XML tags or the masks.
dataset_type = "ImageLabelDataset"
data_root = "data/VOCdevkit/VOC2012"
crop_size = 448

train_pipeline = [
    dict(type="RandomScale", scale_range=(0.5, 1.5)),
    dict(type="HorizontalFlip", p=0.5),
    dict(type="ColorJitter", brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1, p=0.8),
    dict(type="PadCrop", size=crop_size),
]

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        split="train_aug",
        label_dir="SegmentationClassAug",
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False, round_up=False),  # no repeated samples in DDP metrics
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(type=dataset_type, data_root=data_root, split="val"),
)
test_dataloader = val_dataloader
