# DeepLabV3+ (segmentation-models-pytorch on a timm ResNet-101 encoder), output stride 16, with the
# cross-entropy loss that ignores 255. Encoder weights come from a local file only:
#   --cfg-options model.backbone_checkpoint=PATH   (timm resnet101 or torchvision state dict)
model = dict(
    type="Segmenter",
    num_classes=21,
    encoder_name="tu-resnet101",
    head="deeplabv3plus",
    output_stride=16,
    backbone_checkpoint="pretrained/resnet101.pth",
    loss=dict(type="SegCrossEntropy", ignore_index=255),
    # tools/test.py --tta, or: --cfg-options "model.test_cfg.scales=[0.5,0.75,1.0,1.25,1.5,1.75]" model.test_cfg.flip=True
    test_cfg=dict(scales=(1.0,), flip=False),
)
