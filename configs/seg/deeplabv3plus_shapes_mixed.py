# The segmenter of deeplabv3plus_shapes.py trained on real and synthetic images at once: a
# MixedDataset of (real training images with their pseudo labels, synthetic images with theirs) and a
# RatioSampler that gives each epoch every real image and `synthetic_ratio` synthetic images per real
# one (repeated when there are fewer, a fresh random subset when there are more). The schedule counts
# steps, so the ratio changes what the segmenter sees, not how long it trains. Validation and testing
# use the real val split only. --data-root moves the real part; point the synthetic part at a folder
# of tools/generate_synthetic.py (filtered by tools/filter_synthetic.py) and its pseudo labels:
#   --cfg-options train_dataloader.dataset.datasets.0.label_dir=$PWD/work_dirs/pseudo \
#       train_dataloader.dataset.datasets.1.data_root=$PWD/work_dirs/synth \
#       train_dataloader.dataset.datasets.1.label_dir=$PWD/work_dirs/synth_pseudo \
#       "train_dataloader.sampler.ratios=(1.0,0.5)"
# (the pipeline's Train stage sets these from its `labels`, `synthetic`, `synthetic_labels` and `ratio`).
_base_ = ["./deeplabv3plus_shapes.py"]

synthetic_root = "work_dirs/synthetic"
synthetic_label_dir = "pseudo_labels"
synthetic_ratio = 0.5

train_dataloader = dict(
    sampler=dict(_delete_=True, type="RatioSampler", ratios=(1.0, synthetic_ratio)),
    dataset=dict(
        _delete_=True,
        type="MixedDataset",
        datasets=[
            dict(type="ImageLabelDataset", data_root={{_base_.data_root}}, split="train",
                 label_dir={{_base_.pseudo_label_dir}}, skip_corrupt=True, pipeline={{_base_.train_pipeline}}),
            dict(type="ImageLabelDataset", data_root=synthetic_root, split="train",
                 label_dir=synthetic_label_dir, skip_corrupt=True, pipeline={{_base_.train_pipeline}}),
        ],
    ),
)  # fmt: skip
