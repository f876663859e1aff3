# DeepLabV3+ sized for a CPU: the procedural shapes dataset (images seen at 96 px, 7 classes with
# background), a ResNet-10-T encoder (timm's resnet10t) trained from scratch (no weights file needed),
# output stride 8 (12x12 features at 96 px; 6x6 at stride 16 lost thin parts), AdamW (lr 2e-3, the same
# rate for encoder and decoder), 300 steps of batch 16 counted in steps whatever the dataset's size,
# warm-up then poly decay (../_base_/schedules/shapes_iters.py); the final checkpoint is the best by
# validation mIoU. From scratch on 500 images, AdamW on ResNet-10-T reached 68 val mIoU on ground-truth
# masks where SGD (lr 0.01, 10x decoder) on ResNet-18 reached 50 in the same time; the VOC/COCO configs
# keep the paper's SGD recipe.
#
# Train labels: `pseudo_label_dir` below, a folder of <id>.png label maps (any folder written by
# tools/make_pseudo_labels.py). A relative path is taken inside data_root, so give others absolute:
#   --cfg-options train_dataloader.dataset.label_dir=$PWD/work_dirs/bas/pseudo_t0.25
# label_dir=SegmentationClass trains on the ground truth instead (the fully supervised upper bound).
_base_ = [
    "../_base_/datasets/shapes.py",
    "../_base_/schedules/shapes_iters.py",
]

pseudo_label_dir = "pseudo_labels"
num_classes = 7

model = dict(
    type="Segmenter",
    num_classes=num_classes,
    encoder_name="tu-resnet10t",
    head="deeplabv3plus",
    output_stride=8,
    decoder_channels=128,
    loss=dict(type="SegCrossEntropy", ignore_index=255),
)

train_dataloader = dict(
    batch_size=16,
    drop_last=True,  # a last batch of one image would break BatchNorm in ASPP's pooling branch
    dataset=dict(label_dir=pseudo_label_dir, skip_corrupt=True),
)
# An unreadable training image is replaced by a random other one (warned once, counted); the hook
# logs the count after every epoch. Evaluation datasets keep the default and stop on such a file.
custom_hooks = [dict(type="SkippedImagesHook")]

val_evaluator = dict(type="SegIoUMetric")
test_evaluator = val_evaluator
train_cfg = dict(max_iters=300, val_interval=50)
default_hooks = dict(checkpoint=dict(interval=50, save_best="mIoU", rule="greater"))
