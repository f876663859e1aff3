# BAS (Background Activation Suppression, CVPR 2022) on ResNet-50 with layer3 stride 2 and
# layer4 stride 1 (output stride 16). Loss L = L_mcls + 0.2 L_frg + 1.0 L_bas + 1.2 L_ac.
# ImageNet weights come from a local file (timm or torchvision state dict); nothing is downloaded.
model = dict(
    type="BAS",
    num_classes=21,
    backbone=dict(name="resnet50", output_stride=16, checkpoint="pretrained/resnet50.pth"),
    frg_weight=0.2,
    bas_weight=1.0,
    ac_weight=1.2,
    data_preprocessor=dict(type="SegDataPreprocessor"),
)
