# The weakly supervised pipeline on the embedded shapes dataset, sized to finish in minutes on a
# 2-core CPU (tools/run_pipeline.py). Every path is relative to the repository root.
#
# BAS needs a classifier that already recognises the objects (the paper starts from ImageNet weights;
# no weights are downloaded here), so the CAM classifier is trained first and both BAS and the CAM
# baseline continue from it for the same number of epochs: the two localizers get exactly the same
# budget. The BAS seeds are also fused with the CAM seeds, as the BAS authors make their masks.
dataset = dict(n_train=500, n_val=100, size=96, seed=0)

localizer = dict(
    cam_config="configs/bas/cam_shapes.py",
    bas_config="configs/bas/bas_shapes.py",
    warmup_epochs=16,  # CAM classifier training that both localizers start from
    epochs=8,  # then BAS, and the CAM baseline, for this many epochs each
    cfg_options=dict(),
)
seeds = dict(
    split="train",  # seeds and pseudo labels for the training images
    sweep_split="train",  # labelled images the background threshold is chosen on
    scales=(1.0, 0.5, 1.5),  # the paper adds 2.0; left out to keep the demo short
    thresholds="0.05:0.95:0.05",
    source="best",  # 'bas', 'cam', 'fused' or 'best': the highest swept mIoU on the labelled images
)
pseudo_labels = dict(crf=True)
segmenter = dict(config="configs/seg/deeplabv3plus_shapes.py", epochs=6, cfg_options=dict())
report = dict(examples=8)
jobs = 2  # stages run side by side; each gets cores // jobs threads
