"""DeepLab segmentation networks trained on pseudo labels: DeepLabV3+ and the DeepLabV2 ASPP head.

Who does what:

- **timm** builds the encoder (ResNet-101 or any CNN it knows) and dilates its last stages for
  output stride 16 or 8.
- **segmentation-models-pytorch (smp)** turns it into a multi-level feature extractor
  (``TimmUniversalEncoder``, selected by ``encoder_name='tu-<timm name>'``) and provides
  DeepLabV3+'s ASPP, decoder and classifier. We use smp rather than our own DeepLabV3+ because it is
  a maintained, widely used implementation of exactly that architecture; the one difference from
  the plain-convolution DeepLabV3+ of the WSSS literature is smp's depthwise-separable fusion conv.
- **This module** adds what WSSS training needs around it: the DeepLabV2 head (four dilated 3x3
  classifiers summed, used by older WSSS papers; smp has none), encoder weights from a local file
  only (never a download), zero padding for input sizes the network cannot take, multi-scale + flip
  inference, a pluggable loss (:mod:`wsss.segment.losses`) and the optional EMA teacher such a loss
  may ask for (:mod:`wsss.nn.ema`).

Module names for optimizer settings: the encoder's parameters are under ``network.encoder``, the
new layers under ``network.decoder`` (DeepLabV3+ only) and ``network.segmentation_head``, so
``paramwise_cfg=dict(custom_keys={'decoder': dict(lr_mult=10), 'segmentation_head': dict(lr_mult=10)})``
gives the new layers 10x the encoder's learning rate.

A local checkpoint (``backbone_checkpoint``) goes into the timm model inside smp's encoder (the
encoder's own state-dict keys carry the prefix ``model.``): a timm or torchvision ResNet weight file
loads as is (its ``fc`` is reported as unexpected), and so does a saved ``encoder.state_dict()``,
whose ``model.`` prefix is stripped by :func:`~wsss.nn.backbones.read_state_dict`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.encoders import TimmUniversalEncoder, get_encoder
from torch import nn

from wsss.nn.backbones import load_backbone_checkpoint
from wsss.nn.base import WSSSModel
from wsss.nn.ema import EMATeacher
from wsss.registry import MODELS
from wsss.segment.losses import SegCrossEntropy

HEADS = ("deeplabv3plus", "aspp_v2")
DEFAULT_OUTPUT_STRIDE = {"deeplabv3plus": 16, "aspp_v2": 8}
ASPP_RATES = {16: (6, 12, 18), 8: (12, 24, 36)}
DEEPLABV2_DILATIONS = (6, 12, 18, 24)
TTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
PAD_MODES = ("constant", "replicate", "reflect")


def resize_logits(logits: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Bilinearly resize ``(C, H, W)`` or ``(B, C, H, W)`` scores to ``size`` (e.g. a sample's ``ori_shape``)."""
    size = tuple(int(s) for s in size[:2])
    if tuple(logits.shape[-2:]) == size:
        return logits
    batched = logits if logits.dim() == 4 else logits[None]
    resized = F.interpolate(batched, size=size, mode="bilinear", align_corners=False)
    return resized if logits.dim() == 4 else resized[0]


class DeepLabV2Head(nn.Module):
    """DeepLab-v2's ASPP classifier: parallel dilated 3x3 convolutions to class scores, summed.

    Weights start from N(0, 0.01) and biases from 0, as in DeepLab-v2.
    """

    def __init__(self, in_channels: int, num_classes: int, dilations: Sequence[int] = DEEPLABV2_DILATIONS):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(in_channels, num_classes, kernel_size=3, padding=d, dilation=d) for d in dilations
        )
        for branch in self.branches:
            nn.init.normal_(branch.weight, std=0.01)
            nn.init.zeros_(branch.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return sum(branch(features) for branch in self.branches)


class DeepLabV2(nn.Module):
    """An smp encoder with the DeepLab-v2 head on its last features, upsampled to the input size."""

    def __init__(
        self,
        encoder_name: str,
        num_classes: int,
        output_stride: int = 8,
        dilations: Sequence[int] = DEEPLABV2_DILATIONS,
    ):
        super().__init__()
        self.encoder = get_encoder(encoder_name, weights=None, output_stride=output_stride)
        self.segmentation_head = DeepLabV2Head(self.encoder.out_channels[-1], num_classes, dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.segmentation_head(self.encoder(x)[-1])
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_network(
    head: str, encoder_name: str, num_classes: int, output_stride: int, decoder_channels: int = 256
) -> nn.Module:
    """DeepLabV3+ (smp, plain-convolution ASPP with the rates for ``output_stride``) or DeepLabV2."""
    if head == "deeplabv3plus":
        network = smp.DeepLabV3Plus(
            encoder_name=encoder_name,
            encoder_weights=None,
            encoder_output_stride=output_stride,
            decoder_channels=decoder_channels,
            decoder_atrous_rates=ASPP_RATES[output_stride],
            decoder_aspp_separable=False,
            classes=num_classes,
        )
        network.initialize()  # smp's initialiser for decoder and head, which its DeepLabV3+ does not call
        return network
    return DeepLabV2(encoder_name, num_classes, output_stride)


@MODELS.register_module()
class Segmenter(WSSSModel):
    """A semantic segmentation model for mmengine: DeepLabV3+ or DeepLabV2 with a pluggable loss.

    Args:
        num_classes: classes including background (VOC 21, COCO 81).
        encoder_name: smp encoder name; ``'tu-<timm model>'`` for timm encoders (``tu-resnet101``).
        head: ``'deeplabv3plus'`` or ``'aspp_v2'`` (DeepLab-v2: four dilated 3x3 classifiers summed).
        output_stride: 16 or 8; default 16 for DeepLabV3+, 8 for DeepLabV2.
        backbone_checkpoint: local encoder weights (timm/torchvision file); ``None`` = random init.
        loss: a loss from :mod:`wsss.segment.losses`, as config or module (default ``SegCrossEntropy``).
        ema_decay: decay of the EMA teacher, created only when the loss sets ``needs_teacher``; the
            config must then add ``EMATeacherHook`` to ``custom_hooks`` or the teacher never moves.
        test_cfg: ``dict(scales=..., flip=...)`` for ``'predict'`` (default one scale, no flip).
        pad_mode: how inputs are padded to a multiple of the output stride: ``'constant'`` (zeros
            after normalisation, i.e. the mean colour), ``'replicate'`` or ``'reflect'``.
        data_preprocessor: config or module (default ``SegDataPreprocessor``).

    ``forward(inputs, data_samples, mode)``: ``'loss'`` returns the loss dict, ``'predict'`` the
    sample dicts with ``pred_seg`` (int64 ``(H, W)`` at the input's size; see :func:`resize_logits`
    for the original size), ``'tensor'`` the logits at the input's size.
    """

    def __init__(
        self,
        num_classes: int,
        encoder_name: str = "tu-resnet101",
        head: str = "deeplabv3plus",
        output_stride: int | None = None,
        backbone_checkpoint: str | os.PathLike | None = None,
        loss: dict | nn.Module | None = None,
        ema_decay: float = 0.999,
        test_cfg: dict | None = None,
        pad_mode: str = "constant",
        decoder_channels: int = 256,
        data_preprocessor: dict | nn.Module | None = None,
        init_cfg: dict | None = None,
    ):
        super().__init__(data_preprocessor, init_cfg)
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        output_stride = DEFAULT_OUTPUT_STRIDE[head] if output_stride is None else output_stride
        if output_stride not in ASPP_RATES:
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.num_classes = num_classes
        self.pad_mode = pad_mode
        self.network = build_network(head, encoder_name, num_classes, output_stride, decoder_channels)
        if backbone_checkpoint is not None:
            encoder = self.network.encoder
            load_backbone_checkpoint(
                encoder.model if isinstance(encoder, TimmUniversalEncoder) else encoder, backbone_checkpoint
            )
        self.size_divisor = self.network.encoder.output_stride
        if loss is None:
            loss = SegCrossEntropy()
        elif isinstance(loss, dict):
            loss = MODELS.build(loss)
        self.criterion = loss
        self.teacher = EMATeacher(self.network, ema_decay) if getattr(loss, "needs_teacher", False) else None
        test_cfg = dict(test_cfg or {})
        unknown = set(test_cfg) - {"scales", "flip"}
        if unknown:
            raise ValueError(f"test_cfg takes 'scales' and 'flip', got {sorted(unknown)}")
        self.test_scales = tuple(test_cfg.get("scales", (1.0,)))
        self.test_flip = bool(test_cfg.get("flip", False))

    def run_padded(self, network: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``network``'s logits for ``images`` of any size: pad right/bottom to the size divisor, crop back."""
        height, width = images.shape[-2:]
        pad_h = -height % self.size_divisor
        pad_w = -width % self.size_divisor
        if pad_h or pad_w:
            images = F.pad(images, (0, pad_w, 0, pad_h), mode=self.pad_mode)
        return network(images)[..., :height, :width]

    def tensor(self, inputs: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        """Logits at the input's size (a list of images of different sizes gives a list)."""
        if isinstance(inputs, torch.Tensor):
            return self.run_padded(self.network, inputs)
        return [self.run_padded(self.network, image[None])[0] for image in inputs]

    def loss(self, inputs: torch.Tensor, data_samples: list[dict]) -> dict[str, torch.Tensor]:
        """The loss module's dict for a stacked batch (with the teacher's logits when there is one)."""
        logits = self.run_padded(self.network, inputs)
        wants_teacher = getattr(self.criterion, "wants_teacher", None)  # optional: a warm-up needs no teacher
        use_teacher = self.teacher is not None and (wants_teacher is None or wants_teacher())
        teacher_logits = self.run_padded(self.teacher, inputs) if use_teacher else None
        return self.criterion.loss(logits, data_samples, teacher_logits=teacher_logits)

    @torch.no_grad()
    def predict_logits(self, inputs: torch.Tensor, out_size: Sequence[int] | None = None) -> torch.Tensor:
        """Logits ``(B, C, *out_size)`` (default: the input's size) for normalised ``(B, 3, H, W)`` inputs."""
        logits = self.run_padded(self.network, inputs)
        return logits if out_size is None else resize_logits(logits, out_size)

    @torch.no_grad()
    def tta_probs(
        self,
        image: torch.Tensor,
        scales: Sequence[float] = TTA_SCALES,
        flip: bool = True,
        out_size: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Class probabilities averaged over rescaled (and mirrored) copies of a normalised image.

        ``image`` is ``(3, H, W)`` or ``(B, 3, H, W)``; each view's logits are resized to ``out_size``
        (default ``(H, W)``) before the softmax, so the result, ``(C, *out_size)`` or
        ``(B, C, *out_size)``, sums to 1 over classes at every pixel.
        """
        batch = image if image.dim() == 4 else image[None]
        height, width = batch.shape[-2:]
        out_size = (height, width) if out_size is None else tuple(out_size[:2])
        total = None
        for scale in scales:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            scaled = (
                batch
                if size == (height, width)
                else F.interpolate(batch, size=size, mode="bilinear", align_corners=False)
            )
            views = torch.cat([scaled, scaled.flip(-1)]) if flip else scaled
            probs = resize_logits(self.run_padded(self.network, views), out_size).softmax(dim=1)
            if flip:
                probs = probs[: len(batch)] + probs[len(batch) :].flip(-1)
            total = probs if total is None else total + probs
        total = total / (len(scales) * (2 if flip else 1))
        return total if image.dim() == 4 else total[0]

    def predict(
        self, inputs: torch.Tensor | list[torch.Tensor], data_samples: list[dict] | None = None
    ) -> list[dict]:
        """Copies of the samples with ``pred_seg``, int64 ``(H, W)`` at each input's size (``test_cfg`` TTA)."""
        images = list(inputs) if isinstance(inputs, torch.Tensor) else inputs
        samples = data_samples if data_samples is not None else [{} for _ in images]
        use_tta = self.test_flip or self.test_scales != (1.0,)
        if isinstance(inputs, torch.Tensor) and not use_tta:
            predictions = list(self.predict_logits(inputs).argmax(dim=1))
        else:
            predictions = [
                self.tta_probs(image, self.test_scales, self.test_flip).argmax(dim=0) for image in images
            ]
        return [{**sample, "pred_seg": pred} for sample, pred in zip(samples, predictions)]

    def update_teacher(self) -> None:
        """One EMA step of the teacher towards the current weights (called by ``EMATeacherHook``)."""
        if self.teacher is None:
            raise RuntimeError("this Segmenter has no teacher: its loss does not set needs_teacher")
        self.teacher.update(self.network)

    def reset_teacher(self) -> None:
        """Make the teacher equal to the current weights (called by ``EMATeacherHook`` before training)."""
        if self.teacher is None:
            raise RuntimeError("this Segmenter has no teacher: its loss does not set needs_teacher")
        self.teacher.copy_from(self.network)
