# CUB-200-2011 for weakly supervised object localization (WSOL): 200 bird classes, one per image,
# 5,994 train / 5,794 test images, one box per image (used for evaluation only). Root as distributed:
# images/, images.txt, image_class_labels.txt, train_test_split.txt, bounding_boxes.txt, classes.txt.
# The authors' 224 px recipe: train on 256x256 resizes with random 224 crops and flips; test on the whole
# image resized to 224x224. Test boxes stay in the original frame: WSOLMetric and tools/eval_wsol.py resize
# each map back, so the test pipeline must only resize (no crop).
dataset_type = "CUBDataset"
data_root = "data/CUB_200_2011"
crop_size = 224

train_pipeline = [
    dict(type="Resize", height=256, width=256),
    dict(type="RandomCrop", height=crop_size, width=crop_size),
    dict(type="HorizontalFlip", p=0.5),
]
test_pipeline = [dict(type="Resize", height=crop_size, width=crop_size)]

train_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(type=dataset_type, data_root=data_root, split="train", pipeline=train_pipeline),
)
# Validation and testing localize the test split with WSOLMetric (Top-1/Top-5/GT-known Loc, Top-1 Cls,
# MaxBoxAccV2 at threshold 0.1, logged as wsol/...). wsss_collate keeps the samples (boxes per image) a list.
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=False, round_up=False),  # no repeated images in DDP metrics
    collate_fn=dict(type="wsss.wsss_collate"),
    dataset=dict(type=dataset_type, data_root=data_root, split="test", pipeline=test_pipeline),
)
val_cfg = dict(type="ValLoop")
val_evaluator = dict(type="WSOLMetric")
test_dataloader = val_dataloader
test_cfg = dict(type="TestLoop")
test_evaluator = val_evaluator
# tools/eval_wsol.py reads this loader (the Runner ignores the key).
wsol_test_dataloader = dict(
    batch_size=32,
    num_workers=4,
    dataset=dict(type=dataset_type, data_root=data_root, split="test", pipeline=test_pipeline),
)
