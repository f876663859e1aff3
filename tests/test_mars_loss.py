"""MARS's complementing loss: the teacher's labels fill exactly the biased pixels, the weighted CE by hand,
the warm-up, and training on debiased labels through mmengine."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from wsss.cli import train as train_tool
from wsss.data.dataset import ImageLabelDataset
from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX, read_label_png, write_label_png
from wsss.engine.checkpoint import load_from_local_safely
from wsss.segment.losses import MARSComplementCE, restricted_probabilities

REPO = Path(__file__).resolve().parents[1]
B = BIASED_INDEX


def samples(labels: torch.Tensor, cls_labels: list[list[float]]) -> list[dict]:
    return [{"gt_seg": label, "cls_label": torch.tensor(cls)} for label, cls in zip(labels, cls_labels)]


def test_teacher_labels_fill_exactly_the_biased_pixels_with_its_confidence():
    labels = torch.tensor([[[0, 1, B], [B, IGNORE_INDEX, 2]]])
    teacher = torch.zeros(1, 4, 2, 3)
    teacher[0, 3] = 10.0  # class 3 is the teacher's favourite everywhere, but not in this image
    teacher[0, 2, 0, 2] = 2.0  # at the first biased pixel the teacher prefers class 2 ...
    teacher[0, 0, 1, 0] = 1.0  # ... at the second, background
    loss = MARSComplementCE()
    filled, weights = loss.complement(labels, teacher, torch.tensor([[1.0, 1.0, 0.0]]))
    probs = restricted_probabilities(teacher, torch.tensor([[1.0, 1.0, 0.0]]))
    assert probs[0, 3].abs().max() == 0  # classes the image does not have get no probability
    assert filled.tolist() == [[[0, 1, 2], [0, IGNORE_INDEX, 2]]]  # only the two biased pixels changed
    e2, e1 = math.exp(2), math.exp(1)
    assert weights[0, 0, 2].item() == pytest.approx(e2 / (e2 + 2))  # the teacher's confidence in class 2
    assert weights[0, 1, 0].item() == pytest.approx(e1 / (e1 + 2))  # ... and in background
    assert (weights[labels != B] == 1).all()
    only_fg = MARSComplementCE(weight_includes_background=False).complement(
        labels, teacher, torch.tensor([[1.0, 1.0, 0.0]])
    )
    assert only_fg[1][0, 1, 0].item() == pytest.approx(
        1 / (e1 + 2)
    )  # the best foreground class's probability


def test_weighted_cross_entropy_by_hand_and_the_warm_up():
    labels = torch.tensor([[[1, B]]])
    logits = torch.tensor([[[[0.0, 1.0]], [[2.0, 0.0]], [[0.0, 0.0]]]])  # (1, 3, 1, 2)
    teacher = torch.zeros(1, 3, 1, 2)
    teacher[0, 1, 0, 1] = 1.0  # the biased pixel: teacher says class 1 with p = e / (e + 1)
    loss = MARSComplementCE(warmup_iters=1)
    batch = samples(labels, [[1.0, 0.0]])
    ce_first = -math.log(math.exp(2) / (math.exp(2) + 2))  # pixel 1: label 1, logits (0, 2, 0)
    assert loss.wants_teacher() is False  # the first call is in the warm-up: no teacher forward needed
    with torch.enable_grad():
        warm = loss.loss(logits, batch, teacher)["loss_ce"]  # iteration 1: biased pixel ignored
        assert loss.wants_teacher() is True
        assert warm.item() == pytest.approx(ce_first)
        value = loss.loss(logits, batch, teacher)["loss_ce"].item()
    p = math.e / (math.e + 1)
    ce_second = -math.log(math.exp(0) / (math.exp(1) + 2))  # pixel 2 relabelled 1, logits (1, 0, 0)
    assert value == pytest.approx((ce_first + p * ce_second) / 2)  # summed with weights, over 2 valid pixels
    assert int(loss.iteration) == 2
    unweighted = MARSComplementCE(weighted=False).loss(logits, batch, teacher)["loss_ce"].item()
    assert unweighted == pytest.approx((ce_first + ce_second) / 2)


def test_dataset_reads_biased_labels_only_when_allowed(tiny_voc, tmp_path):
    debiased = tmp_path / "debiased"
    for path in (tiny_voc / "SegmentationClass").glob("*.png"):
        label = read_label_png(path)
        label[(label > 0) & (np.arange(label.shape[1])[None] % 2 == 0)] = B
        write_label_png(debiased / path.name, label)
    strict = ImageLabelDataset(tiny_voc, label_dir=str(debiased), labels_from="none")
    with pytest.raises(ValueError, match=r"label values \[254\] .*need allow_biased=True"):
        strict[0]
    dataset = ImageLabelDataset(tiny_voc, label_dir=str(debiased), allow_biased=True, labels_from="none")
    assert (dataset[0]["data_samples"]["gt_seg"] == B).any()


def test_a_segmenter_trains_on_debiased_labels_with_its_teacher(tiny_voc, tmp_path):
    debiased = tmp_path / "debiased"
    for path in (tiny_voc / "SegmentationClass").glob("*.png"):
        label = read_label_png(path)
        label[(label > 0) & (np.arange(label.shape[1])[None] % 2 == 0)] = B
        write_label_png(debiased / path.name, label)
    config = tmp_path / "mars_tiny.py"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/seg/deeplabv3plus_mars_shapes.py')!r}]\n"
        "model = dict(encoder_name='tu-test_resnet', decoder_channels=32, loss=dict(warmup_iters=1))\n"
        "train_dataloader = dict(batch_size=3, num_workers=0, dataset=dict(pipeline=[]))\n"
        "val_dataloader = dict(batch_size=2, num_workers=0, dataset=dict(pipeline=[]))\n"
        "test_dataloader = val_dataloader\n"
    )
    work = tmp_path / "work"
    code = train_tool.main([str(config), "--data-root", str(tiny_voc), "--work-dir", str(work), "--cfg-options",
                            f"train_dataloader.dataset.label_dir={debiased}", "train_cfg.max_iters=4",
                            "train_cfg.val_interval=4", "experiment_name=mars_tiny"])  # fmt: skip
    assert code == 0
    state = load_from_local_safely(str(work / "iter_4.pth"))["state_dict"]
    assert int(state["criterion.iteration"]) == 4
    student = [k for k in state if k.startswith("network.") and k.endswith("weight")][0]
    teacher = "teacher.network." + student.removeprefix("network.")
    assert not torch.equal(state[student], state[teacher])  # the teacher trails the student


def test_the_segmenter_runs_its_teacher_only_once_the_warm_up_is_over():
    from wsss.registry import MODELS

    model = MODELS.build(dict(type="Segmenter", num_classes=3, encoder_name="tu-test_resnet", decoder_channels=16,
                              loss=dict(type="MARSComplementCE", warmup_iters=2), ema_decay=0.9))  # fmt: skip
    calls = []
    model.teacher.register_forward_hook(lambda *_: calls.append(int(model.criterion.iteration)))
    inputs = torch.randn(2, 3, 32, 32)
    labels = torch.full((2, 32, 32), B, dtype=torch.long)
    with torch.enable_grad():
        for _ in range(4):
            model.loss(inputs, samples(labels, [[1.0, 0.0], [0.0, 1.0]]))
    assert calls == [2, 3]  # before the third and fourth calls (iteration counted inside the loss)
