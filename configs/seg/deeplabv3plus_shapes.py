# DeepLabV3+ sized for a CPU: the procedural shapes dataset (96 px images, 7 classes with background),
# a ResNet-10-T encoder (timm's resnet10t) trained from scratch (no weights file needed), 6 epochs at
# batch 16 with AdamW (lr 2e-3, the same rate for encoder and decoder). From scratch on 500 images,
# AdamW on ResNet-10-T reaches 68 val mIoU on ground-truth masks where SGD (lr 0.01, 10x decoder) on
# ResNet-18 reached 50 in the same time; the VOC/COCO configs keep the paper's SGD recipe.
#
# Train labels: `pseudo_label_dir` below, a folder of <id>.png label maps (any folder written by
# tools/make_pseudo_labels.py). A relative path is taken inside data_root, so give others absolute:
#   --cfg-options train_dataloader.dataset.label_dir=$PWD/work_dirs/bas/pseudo_t0.25
# label_dir=SegmentationClass trains on the ground truth instead (the fully supervised upper bound).
# On a CPU shared with other work, one torch thread per process can be much faster than several
# (set OMP_NUM_THREADS=1).
_base_ = [
    "../_base_/default_runtime.py",
    "../_base_/datasets/shapes.py",
    "../_base_/schedules/poly_10e.py",
]

pseudo_label_dir = "pseudo_labels"
num_classes = 7
max_epochs = 6

model = dict(
    type="Segmenter",
    num_classes=num_classes,
    encoder_name="tu-resnet10t",
    head="deeplabv3plus",
    output_stride=16,
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

optim_wrapper = dict(optimizer=dict(_delete_=True, type="AdamW", lr=2e-3, weight_decay=1e-4))
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1, save_best="mIoU", rule="greater"), logger=dict(interval=10))
