# DeepLabV3+ (ResNet-101, output stride 16) trained on pseudo labels of VOC train_aug and validated
# on VOC val: the segmentation stage of MARS and RS+EPM.
#
# Recipe, from the MARS authors' related public code (DHR's train.py, which trains this network on
# MARS labels): crop 512, batch 16, SGD lr 1e-3 (10x for decoder and classifier), momentum 0.9,
# weight decay 4e-5, poly decay (power 0.9), 100 epochs (~66k iterations on the 10,582 images).
# Our notes on the MARS paper hold no iteration count of its own. Augmentation: random rescale
# 0.5-2.0 (the usual DeepLab range; DHR's RandomResize draws sizes of 320-640 px instead), flip,
# colour jitter (DHR's strengths), pad (labels with 255) and crop.
#
# Train labels: `pseudo_label_dir` below, a folder of <id>.png label maps (any folder written by
# tools/make_pseudo_labels.py). A relative path is taken inside data_root, so give others absolute:
#   --cfg-options train_dataloader.dataset.label_dir=$PWD/work_dirs/bas/pseudo_t0.25
# Encoder weights come from a local file only (nothing is downloaded), e.g. timm's resnet101.tv_in1k
# or torchvision's ImageNet ResNet-101 saved with torch.save(model.state_dict(), PATH):
#   --cfg-options model.backbone_checkpoint=PATH
# On several GPUs, BatchNorm sees batch 16 / n per GPU; add sync_bn="torch" to share its statistics.
_base_ = [
    "../_base_/models/deeplabv3plus_r101.py",
    "../_base_/default_runtime.py",
    "../_base_/datasets/voc.py",
    "../_base_/schedules/poly_10e.py",
]

pseudo_label_dir = "pseudo_labels"
backbone_checkpoint = "pretrained/resnet101.pth"
num_classes = 21
crop_size = 512
max_epochs = 100

model = dict(num_classes=num_classes, backbone_checkpoint=backbone_checkpoint)

train_pipeline = [
    dict(type="RandomScale", scale_range=(0.5, 2.0)),
    dict(type="HorizontalFlip", p=0.5),
    dict(type="ColorJitter", brightness=0.3, contrast=0.3, saturation=0.3, hue=0.1, p=0.8),
    dict(type="PadCrop", size=crop_size),
]
train_dataloader = dict(
    batch_size=16,
    drop_last=True,  # a last batch of one image would break BatchNorm in ASPP's pooling branch
    dataset=dict(label_dir=pseudo_label_dir, pipeline=train_pipeline, skip_corrupt=True),
)
# An unreadable training image is replaced by a random other one (warned once, counted); the hook
# logs the count after every epoch. Evaluation datasets keep the default and stop on such a file.
custom_hooks = [dict(type="SkippedImagesHook")]

val_evaluator = dict(type="SegIoUMetric")
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type="SGD", lr=1e-3, momentum=0.9, weight_decay=4e-5),
    paramwise_cfg=dict(custom_keys={"decoder": dict(lr_mult=10.0), "segmentation_head": dict(lr_mult=10.0)}),
)
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
default_hooks = dict(checkpoint=dict(interval=10, save_best="mIoU", rule="greater"))
