"""Segmenter (DeepLabV3+ / DeepLabV2 on smp + timm), its loss, inference helpers and the EMA teacher."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import timm
import torch
from mmengine.config import Config
from mmengine.model import convert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.runner import Runner
from torch.utils.data import Dataset

from wsss.data.dataset import wsss_collate
from wsss.data.shapes import make_shapes_dataset
from wsss.engine.runner import WSSSRunner
from wsss.nn.ema import EMATeacher, EMATeacherHook
from wsss.segment.losses import SegCrossEntropy, weighted_cross_entropy
from wsss.segment.model import Segmenter, resize_logits

ENCODER = "tu-test_resnet"  # timm's 0.4M-parameter ResNet made for tests
NUM_CLASSES = 4


def tiny_segmenter(**kwargs) -> Segmenter:
    torch.manual_seed(0)
    kwargs.setdefault("decoder_channels", 32)
    return Segmenter(NUM_CLASSES, encoder_name=ENCODER, **kwargs)


def block_batch(batch_size: int = 2, size: int = 64) -> dict:
    """uint8 images whose quadrants have a class-specific colour, labels to match, and a 255 band."""
    generator = torch.Generator().manual_seed(0)
    colours = torch.tensor([[20, 20, 20], [230, 40, 40], [40, 230, 40], [40, 40, 230]], dtype=torch.uint8)
    images, samples = [], []
    half = size // 2
    for b in range(batch_size):
        classes = torch.randint(0, NUM_CLASSES, (2, 2), generator=generator)
        label = classes.repeat_interleave(half, 0).repeat_interleave(half, 1)
        image = colours[label].permute(2, 0, 1).contiguous()
        label[half - 1 : half + 1, :] = 255
        images.append(image)
        samples.append({"img_id": f"img{b}", "ori_shape": (size, size), "gt_seg": label})
    return {"inputs": torch.stack(images), "data_samples": samples}


@pytest.mark.parametrize(
    ("head", "output_stride"), [("deeplabv3plus", 16), ("deeplabv3plus", 8), ("aspp_v2", 8), ("aspp_v2", 16)]
)
def test_forward_shapes_for_heads_and_strides(head, output_stride):
    model = tiny_segmenter(head=head, output_stride=output_stride)
    images = torch.randn(2, 3, 64, 64)
    assert model.network.encoder(images)[-1].shape[-2:] == (64 // output_stride, 64 // output_stride)
    assert model(images).shape == (2, NUM_CLASSES, 64, 64)
    assert model.size_divisor == output_stride


def test_output_stride_defaults_follow_the_head():
    assert tiny_segmenter().size_divisor == 16
    assert tiny_segmenter(head="aspp_v2").size_divisor == 8
    with pytest.raises(ValueError, match="output_stride"):
        tiny_segmenter(output_stride=32)
    with pytest.raises(ValueError, match="head"):
        tiny_segmenter(head="pspnet")


def test_odd_input_size_is_padded_and_cropped_back():
    model = tiny_segmenter().eval()
    image = torch.randn(1, 3, 37, 53)
    logits = model.predict_logits(image)
    assert logits.shape == (1, NUM_CLASSES, 37, 53)
    # independent route: zero-pad to 48 x 64 by hand, run the smp network, crop
    padded = torch.zeros(1, 3, 48, 64)
    padded[..., :37, :53] = image
    with torch.no_grad():
        expected = model.network(padded)[..., :37, :53]
    torch.testing.assert_close(logits, expected)
    assert model.predict_logits(image, out_size=(74, 106)).shape == (1, NUM_CLASSES, 74, 106)

    samples = model(
        [torch.randn(3, 37, 53), torch.randn(3, 64, 48)], [{"img_id": "a"}, {"img_id": "b"}], "predict"
    )
    assert [s["pred_seg"].shape for s in samples] == [(37, 53), (64, 48)]
    assert samples[0]["img_id"] == "a" and samples[0]["pred_seg"].dtype == torch.int64


def test_cross_entropy_ignores_255_and_matches_hand_value():
    labels = torch.tensor([[[0, 1], [255, 2]]])
    sharp = 4.0
    correct = torch.zeros(1, 3, 2, 2)
    for y, x, c in [(0, 0, 0), (0, 1, 1), (1, 1, 2), (1, 0, 0)]:
        correct[0, c, y, x] = sharp
    wrong_on_ignored = correct.clone()
    wrong_on_ignored[0, :, 1, 0] = torch.tensor([-9.0, 3.0, 9.0])
    samples = [{"gt_seg": labels[0]}]
    loss = SegCrossEntropy()
    expected = -math.log(math.exp(sharp) / (math.exp(sharp) + 2))  # each of the 3 valid pixels
    assert loss.loss(correct, samples)["loss_ce"].item() == pytest.approx(expected, rel=1e-6)
    assert loss.loss(wrong_on_ignored, samples)["loss_ce"].item() == pytest.approx(expected, rel=1e-6)
    wrong_on_valid = correct.clone()
    wrong_on_valid[0, :, 0, 0] = torch.tensor([0.0, sharp, 0.0])
    assert loss.loss(wrong_on_valid, samples)["loss_ce"].item() > expected + 1.0


def test_weighted_cross_entropy_hand_value_and_all_ignored_batch():
    logits = torch.zeros(1, 2, 1, 3, requires_grad=True)  # uniform: every pixel costs log 2
    labels = torch.tensor([[[0, 1, 255]]])
    weights = torch.tensor([[[1.0, 0.5, 7.0]]])
    value = weighted_cross_entropy(logits, labels, weights)
    assert value.item() == pytest.approx((1.0 + 0.5) * math.log(2) / 2)
    empty = weighted_cross_entropy(logits, torch.full((1, 1, 3), 255))
    empty.backward()
    assert empty.item() == 0.0 and torch.count_nonzero(logits.grad) == 0


def test_loss_resizes_logits_to_label_size():
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 1] = 5.0
    out = SegCrossEntropy().loss(logits, [{"gt_seg": torch.ones(8, 8, dtype=torch.long)}])["loss_ce"]
    assert out.item() == pytest.approx(-math.log(math.exp(5) / (math.exp(5) + 2)), rel=1e-6)


def test_a_few_sgd_steps_reduce_the_loss_on_one_batch():
    model = tiny_segmenter()
    optim_wrapper = build_optim_wrapper(model, dict(optimizer=dict(type="SGD", lr=0.05, momentum=0.9)))
    batch = block_batch()
    losses = [model.train_step(batch, optim_wrapper)["loss_ce"].item() for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0]


def test_backbone_checkpoint_loads_encoder_tensors(tmp_path):
    source = tiny_segmenter()
    torch.manual_seed(123)
    for tensor in source.network.encoder.state_dict().values():
        if tensor.is_floating_point():
            tensor.normal_()
    encoder_file = tmp_path / "encoder.pth"
    torch.save(source.network.encoder.state_dict(), encoder_file)  # keys 'model.conv1.0.weight', ...
    loaded = tiny_segmenter(backbone_checkpoint=encoder_file)
    expected = source.network.encoder.state_dict()
    got = loaded.network.encoder.state_dict()
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key

    timm_model = timm.create_model("test_resnet", pretrained=False)  # plain timm keys plus a classifier
    timm_file = tmp_path / "timm.pth"
    torch.save(timm_model.state_dict(), timm_file)
    from_timm = tiny_segmenter(backbone_checkpoint=timm_file)
    assert torch.equal(from_timm.network.encoder.model.conv1[0].weight, timm_model.conv1[0].weight)

    with pytest.raises(FileNotFoundError, match="missing.pth.*not found"):
        tiny_segmenter(backbone_checkpoint=tmp_path / "missing.pth")


def test_tta_returns_probabilities_at_the_original_size():
    model = tiny_segmenter().eval()
    image = torch.randn(3, 37, 53)
    probs = model.tta_probs(image)
    assert probs.shape == (NUM_CLASSES, 37, 53)
    torch.testing.assert_close(probs.sum(0), torch.ones(37, 53))
    # one scale with flip, recomputed by hand
    plain = model.predict_logits(image[None])[0].softmax(0)
    mirrored = model.predict_logits(image.flip(-1)[None])[0].softmax(0).flip(-1)
    torch.testing.assert_close(model.tta_probs(image, scales=(1.0,), flip=True), (plain + mirrored) / 2)
    assert model.tta_probs(image, scales=(0.5,), flip=False, out_size=(20, 30)).shape == (NUM_CLASSES, 20, 30)

    tta_model = tiny_segmenter(test_cfg=dict(scales=(0.75, 1.0), flip=True)).eval()
    pred = tta_model(image[None], None, "predict")[0]["pred_seg"]
    torch.testing.assert_close(pred, tta_model.tta_probs(image, (0.75, 1.0), True).argmax(0))


def test_resize_logits_to_original_shape():
    logits = torch.randn(NUM_CLASSES, 8, 8)
    assert resize_logits(logits, (15, 9)).shape == (NUM_CLASSES, 15, 9)
    assert resize_logits(logits[None], (15, 9, 3)).shape == (1, NUM_CLASSES, 15, 9)
    assert resize_logits(logits, (8, 8)) is logits


@pytest.mark.parametrize("head", ["deeplabv3plus", "aspp_v2"])
def test_head_parameters_get_ten_times_the_learning_rate(head):
    model = tiny_segmenter(head=head)
    cfg = dict(
        type="OptimWrapper",
        optimizer=dict(type="SGD", lr=1e-3, momentum=0.9, weight_decay=4e-5),
        paramwise_cfg=dict(custom_keys={"decoder": dict(lr_mult=10), "segmentation_head": dict(lr_mult=10)}),
    )
    optimizer = build_optim_wrapper(model, cfg).optimizer
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    names = dict(model.named_parameters())
    assert len(lr_of) == len(names)
    for name, param in names.items():
        new_layer = name.startswith(("network.decoder.", "network.segmentation_head."))
        assert lr_of[id(param)] == pytest.approx(1e-2 if new_layer else 1e-3), name
    assert sum(name.startswith("network.segmentation_head.") for name in names) > 0
    assert sum(name.startswith("network.encoder.") for name in names) > 0


class TeacherProbeLoss(SegCrossEntropy):
    """Cross-entropy plus a term that uses the teacher's logits, which it records."""

    needs_teacher = True

    def __init__(self):
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def loss(self, logits, data_samples, teacher_logits=None):
        self.seen.append(teacher_logits)
        losses = super().loss(logits, data_samples)
        losses["loss_teacher"] = (logits * teacher_logits.softmax(1)).mean()
        return losses


def test_teacher_exists_only_when_the_loss_needs_one():
    assert tiny_segmenter().teacher is None
    model = tiny_segmenter(loss=TeacherProbeLoss(), ema_decay=0.9)
    assert isinstance(model.teacher, EMATeacher) and model.teacher.decay == 0.9
    with pytest.raises(RuntimeError, match="no teacher"):
        tiny_segmenter().update_teacher()


def test_teacher_gets_no_gradient_and_no_optimizer_entry():
    model = tiny_segmenter(loss=TeacherProbeLoss())
    assert list(model.teacher.parameters()) == []
    optim_wrapper = build_optim_wrapper(model, dict(optimizer=dict(type="SGD", lr=0.01)))
    optimized = {id(p) for group in optim_wrapper.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in model.network.parameters()}

    model.train()
    assert not model.teacher.training and model.network.training
    batch = model.data_preprocessor(block_batch(), True)
    losses = model(**batch, mode="loss")
    sum(losses.values()).backward()
    teacher_logits = model.criterion.seen[-1]
    assert teacher_logits.shape == (2, NUM_CLASSES, 64, 64) and not teacher_logits.requires_grad
    for name, tensor in model.teacher.state_dict(keep_vars=True).items():
        assert not tensor.requires_grad and tensor.grad is None, name
    assert all(p.grad is not None for p in model.network.parameters())


def test_ema_update_formula():
    model = tiny_segmenter(loss=TeacherProbeLoss(), ema_decay=0.75)
    torch.manual_seed(1)
    for tensor in model.teacher.network.state_dict().values():
        if tensor.is_floating_point():
            tensor.normal_()
    before_teacher = {k: v.clone() for k, v in model.teacher.network.state_dict().items()}
    student = model.network.state_dict()
    for tensor in student.values():
        if tensor.is_floating_point():
            tensor.normal_()
        else:
            tensor.fill_(7)
    model.update_teacher()
    after = model.teacher.network.state_dict()
    for key, value in after.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * before_teacher[key] + 0.25 * student[key])
        else:
            assert torch.equal(value, student[key]), key
    model.reset_teacher()
    assert all(torch.equal(v, student[k]) for k, v in model.teacher.network.state_dict().items())
    with pytest.raises(ValueError, match="decay"):
        EMATeacher(model.network, decay=1.0)


def test_teacher_predicts_like_the_student_in_eval_mode_and_survives_sync_bn():
    model = tiny_segmenter(loss=TeacherProbeLoss())
    model.train()
    model.train_step(block_batch(), build_optim_wrapper(model, dict(optimizer=dict(type="SGD", lr=0.05))))
    model.reset_teacher()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        teacher_logits = model.teacher(images)
        student_logits = model.network.eval()(images)
    torch.testing.assert_close(teacher_logits, student_logits)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.teacher.modules())

    converted = convert_sync_batchnorm(model)
    assert any(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.network.modules())
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.teacher.modules())


def test_hook_resets_on_a_fresh_start_and_steps_only_after_an_optimizer_step():
    calls = []
    model = SimpleNamespace(
        teacher=object(),
        reset_teacher=lambda: calls.append("reset"),
        update_teacher=lambda: calls.append("update"),
    )
    steps = iter([False, True])
    runner = SimpleNamespace(
        model=model, iter=0, optim_wrapper=SimpleNamespace(should_update=lambda: next(steps))
    )
    hook = EMATeacherHook()
    hook.before_train(runner)
    hook.after_train_iter(runner, 0)
    hook.after_train_iter(runner, 1)
    assert calls == ["reset", "update"]
    runner.iter = 5  # resumed: the checkpoint's teacher is kept
    hook.before_train(runner)
    assert calls == ["reset", "update"]
    with pytest.raises(RuntimeError, match="no EMA teacher"):
        hook.before_train(SimpleNamespace(model=SimpleNamespace(teacher=None), iter=0))


class BlockDataset(Dataset):
    def __init__(self):
        self.batch = block_batch(batch_size=4)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return {"inputs": self.batch["inputs"][index], "data_samples": self.batch["data_samples"][index]}


def test_hook_in_an_mmengine_run_with_gradient_accumulation(tmp_path):
    model = tiny_segmenter(loss=TeacherProbeLoss(), ema_decay=0.0)  # decay 0: teacher = student after a step
    updates = []
    original_update = model.update_teacher
    model.update_teacher = lambda: (updates.append(1), original_update())
    runner = Runner(
        model=model,
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=BlockDataset(),
            sampler=dict(type="DefaultSampler", shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=wsss_collate,
        ),
        train_cfg=dict(by_epoch=False, max_iters=4),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.05), accumulative_counts=2),
        custom_hooks=[dict(type="EMATeacherHook")],
        default_hooks=dict(checkpoint=None, logger=None),
        default_scope="wsss",
        log_level="WARNING",
    )
    runner.train()
    assert len(updates) == 2
    student = model.network.state_dict()
    for key, value in model.teacher.network.state_dict().items():
        torch.testing.assert_close(value, student[key])


CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "seg"


def test_voc_and_coco_configs_hold_the_recipe():
    voc = Config.fromfile(str(CONFIGS / "deeplabv3plus_r101_voc.py"))
    coco = Config.fromfile(str(CONFIGS / "deeplabv3plus_r101_coco.py"))
    for cfg, classes in ((voc, 21), (coco, 81)):
        assert cfg.model.num_classes == classes and cfg.model.encoder_name == "tu-resnet101"
        assert cfg.train_dataloader.batch_size == 16
        assert cfg.train_dataloader.dataset.label_dir == "pseudo_labels"
        steps = {t["type"]: t for t in cfg.train_dataloader.dataset.pipeline}
        assert steps["PadCrop"]["size"] == 512 and steps["RandomScale"]["scale_range"] == (0.5, 2.0)
        assert cfg.optim_wrapper.optimizer == dict(type="SGD", lr=1e-3, momentum=0.9, weight_decay=4e-5)
        assert cfg.optim_wrapper.paramwise_cfg.custom_keys.segmentation_head.lr_mult == 10
        assert cfg.param_scheduler[0]["power"] == 0.9
        assert cfg.val_evaluator.type == "SegIoUMetric"
    assert coco.val_dataloader.dataset.split == "val2014" and coco.test_dataloader.dataset.split == "val2014"
    assert coco.train_dataloader.dataset.data_root == "data/coco"


def test_shapes_config_trains_and_validates_with_mmengine(tmp_path):
    make_shapes_dataset(tmp_path / "shapes", 8, 4, 64, 0, workers=1)
    cfg = Config.fromfile(str(CONFIGS / "deeplabv3plus_shapes.py"))
    cfg.model.encoder_name = ENCODER  # the config's ResNet-18, swapped for speed
    cfg.model.decoder_channels = 32
    for loader in (cfg.train_dataloader, cfg.val_dataloader, cfg.test_dataloader):
        loader.dataset.data_root = str(tmp_path / "shapes")
        loader.num_workers = 0
        loader.batch_size = 4
    cfg.train_dataloader.dataset.label_dir = "SegmentationClass"  # ground truth stands in for pseudo labels
    cfg.train_cfg.max_iters = 4
    cfg.work_dir = str(tmp_path / "work")
    cfg.log_level = "WARNING"
    runner = WSSSRunner.from_cfg(cfg)
    runner.train()
    metrics = runner.val_loop.run()
    assert 0.0 <= metrics["mIoU"] <= 100.0
    # counted in steps: validated and saved at the last one, the best by mIoU recorded as final
    summary = json.loads((tmp_path / "work" / "training_summary.json").read_text())
    assert (tmp_path / "work" / "iter_4.pth").is_file() and summary["iterations"] == 4
    assert summary["validation"][-1]["iter"] == 4 and "best_mIoU_iter_4.pth" in summary["final_checkpoint"]
