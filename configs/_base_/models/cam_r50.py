# Plain multi-label classifier with class activation maps (the CAM baseline) on ResNet-50, output
# stride 16. ImageNet weights come from a local file; nothing is downloaded.
model = dict(
    type="CAM",
    num_classes=21,
    backbone=dict(name="resnet50", output_stride=16, checkpoint="pretrained/resnet50.pth"),
    data_preprocessor=dict(type="SegDataPreprocessor"),
)
