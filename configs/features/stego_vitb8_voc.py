# STEGO on a frozen DINO ViT-B/8 for PASCAL VOC, the features MARS uses (D = 70, stride 8).
#
# The STEGO authors' recipe where they give it: Adam lr 5e-4, 5,000 steps, 224-px crops, an 11x11
# grid of random points, Dropout2d 0.1 on the backbone features, pairs with itself, with one of the
# 7 nearest neighbours (of 30 precomputed) and with a random image. Loss weights and shifts
# (self, knn, random): STEGO's CocoStuff ViT values, weights (0.67, 0.25, 0.63) and shifts
# (0.08, 0.02, 0.66) (their repository's ViT-B/8 settings for other datasets differ; tune for VOC).
#
#   python tools/find_neighbours.py configs/features/stego_vitb8_voc.py --out work_dirs/voc_knn.json \
#       --split train_aug --data-root data/VOCdevkit/VOC2012 --k 30 \
#       --cfg-options model.backbone.weights=checkpoints/dino_vitbase8_pretrain.pth
#   python tools/train.py configs/features/stego_vitb8_voc.py --work-dir work_dirs/stego_voc
#   python tools/extract_features.py configs/features/stego_vitb8_voc.py work_dirs/stego_voc \
#       --out work_dirs/voc_stego --split train_aug --scales 2.0 1.0 1.5 0.5 --flip
_base_ = ["../_base_/datasets/voc.py", "../_base_/default_runtime.py"]

crop_size = 224
neighbours = "work_dirs/voc_knn.json"
model = dict(
    type="STEGO",
    backbone=dict(
        type="DinoViT", arch="vit_base_patch8_224", weights="checkpoints/dino_vitbase8_pretrain.pth"
    ),
    dim=70,
    points=11,
    dropout=0.1,
    weights=(0.67, 0.25, 0.63),
    shifts=(0.08, 0.02, 0.66),
)
train_pipeline = [
    dict(type="ResizeShorter", size=crop_size),
    dict(type="RandomScale", scale_range=(0.75, 1.5)),
    dict(type="HorizontalFlip", p=0.5),
    dict(type="PadCrop", size=crop_size),
]
train_dataloader = dict(
    batch_size=16,
    dataset=dict(
        _delete_=True,
        type="NeighbourPairs",
        neighbours=neighbours,
        k=7,
        dataset=dict(
            type="ImageLabelDataset",
            data_root="data/VOCdevkit/VOC2012",
            split="train_aug",
            pipeline=train_pipeline,
        ),  # fmt: skip
    ),
)
optim_wrapper = dict(type="OptimWrapper", optimizer=dict(type="Adam", lr=5e-4))
param_scheduler = []
train_cfg = dict(type="IterBasedTrainLoop", max_iters=5000, val_interval=5000)
# No validation while training (no labels); tools/eval_features.py probes the extracted features.
val_dataloader = None
val_cfg = None
val_evaluator = None
test_dataloader = None
test_cfg = None
test_evaluator = None
default_hooks = dict(checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=1000, max_keep_ckpts=1, save_last=True),
                     logger=dict(type="LoggerHook", interval=50))  # fmt: skip
log_processor = dict(by_epoch=False)
