# MS COCO 2014 for image-level WSSS (81 classes with background), as tools/prepare_coco.py writes it
# when train2014 and val2014 are converted into one folder: label PNGs in SegmentationClass/, split
# lists train2014.txt / val2014.txt, class_names.txt, cls_labels.json, and one link per split to its
# images (data/coco/train2014, data/coco/val2014). The same reader and augmentation as voc.py.
dataset_type = "ImageLabelDataset"
data_root = "data/coco"
crop_size = 448

train_pipeline = [
    dict(type="RandomScale", scale_range=(0.5, 1.5)),
    dict(type="HorizontalFlip", p=0.5),
    dict(type="ColorJitter", brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1, p=0.8),
    dict(type="PadCrop", size=crop_size),
]
coco_split = dict(type=dataset_type, data_root=data_root, classes="coco", label_dir="SegmentationClass")

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(**coco_split, split="train2014", img_dir="train2014", pipeline=train_pipeline),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False, round_up=False),
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(**coco_split, split="val2014", img_dir="val2014"),
)
test_dataloader = val_dataloader
