"""BAS localizers: losses against a deep-copy reference and hand values, gradient routing, inference."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from wsss.localize.bas import (
    BAS,
    background_suppression_loss,
    draw_positive_classes,
    multilabel_softmax_loss,
    resize_map,
)
from wsss.localize.bas_wsol import BASWSOL, single_labels
from wsss.registry import MODELS

SIZE = 64
TOY_BACKBONE = dict(name="test_resnet", output_stride=16)


def make_bas(seed: int = 0, **kwargs) -> BAS:
    torch.manual_seed(seed)
    return BAS(num_classes=4, backbone=TOY_BACKBONE, **kwargs).train()


def reference_bas_terms(model: BAS, x: torch.Tensor, cls_label: torch.Tensor, drawn: torch.Tensor) -> dict:
    """The four BAS losses written out as the authors' code does them, with a real deepcopy per step."""
    batch = x.shape[0]
    mid, last = model.backbone(x)
    cam = model.classifier(last)
    logits = cam.mean(dim=(2, 3))
    fpm = torch.sigmoid(model.generator(mid))
    fg_mask = torch.stack([fpm[i, drawn[i]] for i in range(batch)]).unsqueeze(1)
    later_copy = copy.deepcopy(model.backbone.mid_to_last).train()
    classifier_copy = copy.deepcopy(model.classifier)
    erased = classifier_copy(later_copy(mid.detach() * (1 - fg_mask))).mean(dim=(2, 3))
    ratios = []
    for i in range(batch):
        fg = F.relu(logits[i, drawn[i]].detach())
        bg = F.relu(erased[i, drawn[i]])
        ratios.append(torch.ones(()) if bg > fg else bg / (fg + 1e-8))
    mcls = torch.zeros(())
    for i in range(batch):
        pos = logits[i][cls_label[i] > 0.5]
        neg = logits[i][cls_label[i] < 0.5]
        rows = torch.cat([pos[:, None], neg[None].expand(len(pos), -1)], dim=1)
        mcls = mcls + F.cross_entropy(rows, torch.zeros(len(pos), dtype=torch.long), reduction="sum") / batch
    return {
        "mcls": mcls,
        "frg": F.cross_entropy((cam.detach() * fg_mask).mean(dim=(2, 3)), drawn),
        "bas": torch.stack(ratios).mean(),
        "ac": fg_mask.mean(),
    }


def steer_classifier(
    model, x, drawn, mid_pool=torch.nn.Identity(), targets=((2.0, 1.0), (4.0, 1.0), (1.0, 2.0))
):
    """Set the classifier rows of the drawn classes so that image i gets (S, S_bg) = targets[i].

    The last classifier layer is linear without spatial mixing after GAP, so each row solves a 2x2
    system in the pooled features of the normal and erased branches. Random weights would leave the
    images in either branch of L_bas by chance; this makes both branches certain.
    """
    head = model.classifier if isinstance(model.classifier, torch.nn.Conv2d) else model.classifier[-1]
    before_head = torch.nn.Identity() if head is model.classifier else model.classifier[:-1]
    with torch.no_grad():
        mid = model.backbone.to_mid(x)
        fpm = torch.sigmoid(model.generator(mid))
        fg_mask = fpm[torch.arange(len(drawn)), drawn].unsqueeze(1)
        later = copy.deepcopy(torch.nn.Sequential(model.backbone.mid_to_last, before_head)).train()
        pooled = later(mid_pool(mid)).mean(dim=(2, 3))
        pooled_erased = later(mid_pool(mid * (1 - fg_mask))).mean(dim=(2, 3))
        for i, (score, bg_score) in enumerate(targets):
            offset = 0.0 if head.bias is None else head.bias[drawn[i]].item()
            system = torch.stack([pooled[i], pooled_erased[i]]).double()
            rhs = torch.tensor([score, bg_score], dtype=torch.double) - offset
            head.weight[drawn[i], :, 0, 0] = (torch.linalg.pinv(system) @ rhs).float()


@pytest.fixture
def steered():
    """A toy BAS, a batch of 3 with fixed drawn classes 0, 1, 2, steered so L_bas = (0.5 + 0.25 + 1) / 3."""
    model = make_bas()
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    cls_label = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    drawn = torch.tensor([0, 1, 2])
    steer_classifier(model, x, drawn)
    return model, x, cls_label, drawn


def test_losses_match_deepcopy_reference_and_hand_value(steered):
    model, x, cls_label, drawn = steered
    ours = model.loss_terms(x, cls_label, drawn)
    reference = reference_bas_terms(model, x, cls_label, drawn)
    for key in ("mcls", "frg", "bas", "ac"):
        torch.testing.assert_close(ours[key], reference[key], rtol=1e-5, atol=1e-6)
    assert ours["bas"].item() == pytest.approx((0.5 + 0.25 + 1.0) / 3, abs=1e-4)
    # Gradients of L_bas through the functional branch equal those through the deepcopy, for the
    # generator and for the stages below it (which the erased branch must reach only via M).
    params = [model.generator.weight, *model.backbone.to_mid.parameters()]
    ours_grads = torch.autograd.grad(ours["bas"], params)
    reference_grads = torch.autograd.grad(reference["bas"], params)
    assert ours_grads[0].abs().sum() > 0
    for ours_grad, reference_grad in zip(ours_grads, reference_grads):
        torch.testing.assert_close(ours_grad, reference_grad, rtol=1e-4, atol=1e-7)


def test_background_branch_keeps_running_stats_and_uses_batch_statistics(steered):
    model, x, _, drawn = steered
    with torch.no_grad():
        mid = model.backbone.to_mid(x)
        fg_mask = torch.sigmoid(model.generator(mid))[torch.arange(3), drawn].unsqueeze(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    erased = model.erased_logits(mid, fg_mask)
    after = model.state_dict()
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    # A train-mode deep copy does the same computation but moves its own running statistics.
    later_copy = copy.deepcopy(model.backbone.mid_to_last).train()
    expected = model.classifier(later_copy(mid * (1 - fg_mask))).mean(dim=(2, 3))
    torch.testing.assert_close(erased, expected, rtol=1e-5, atol=1e-6)
    moved = [k for k, v in later_copy.state_dict().items() if "running_mean" in k]
    assert moved and not torch.equal(
        later_copy.state_dict()[moved[0]], before[f"backbone.mid_to_last.{moved[0]}"]
    )
    # Batch statistics, not running ones: an eval-mode copy gives other logits.
    eval_copy = copy.deepcopy(model.backbone.mid_to_last).eval()
    assert not torch.allclose(erased, model.classifier(eval_copy(mid * (1 - fg_mask))).mean(dim=(2, 3)))


def reached_groups(model, terms: dict[str, torch.Tensor]) -> dict[str, set[str]]:
    """For each loss term, the parameter groups that get a nonzero gradient from it alone."""
    groups = {
        "to_mid": model.backbone.to_mid,
        "mid_to_last": model.backbone.mid_to_last,
        "classifier": model.classifier,
        "generator": model.generator,
    }
    names = [name for name, module in groups.items() for _ in module.parameters()]
    params = [p for module in groups.values() for p in module.parameters()]
    reached = {}
    for term, value in terms.items():
        grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
        reached[term] = {name for name, g in zip(names, grads) if g is not None and g.abs().sum() > 0}
    return reached


# Which parameter groups each loss term reaches. The generator reads the mid feature without a detach
# (as in the authors' code), so every term through M also trains the stages up to the mid stage.
BAS_GRADIENT_ROUTES = {
    "mcls": {"to_mid", "mid_to_last", "classifier"},
    "frg": {"to_mid", "generator"},
    "bas": {"to_mid", "generator"},
    "ac": {"to_mid", "generator"},
}


def test_bas_gradient_routing(steered):
    model, x, cls_label, drawn = steered
    assert reached_groups(model, model.loss_terms(x, cls_label, drawn)) == BAS_GRADIENT_ROUTES


def test_multilabel_softmax_loss_hand_value():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5], [1.0, 2.0, 3.0]], requires_grad=True)
    cls_label = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    # image 0: positives 2 and -1 against the negative 0; image 1: no negatives; image 2: 2 against 1 and 3.
    image_0 = math.log(1 + math.exp(0 - 2)) + math.log(1 + math.exp(0 + 1))
    image_2 = math.log(math.exp(2) + math.exp(1) + math.exp(3)) - 2
    loss = multilabel_softmax_loss(logits, cls_label)
    assert loss.item() == pytest.approx((image_0 + 0.0 + image_2) / 3, rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.all(logits.grad[1] == 0)


def test_background_suppression_loss_hand_value():
    fg_score = torch.tensor([2.0, 1.0, -1.0, 3.0], requires_grad=True)
    bg_score = torch.tensor([1.0, 3.0, 0.5, -2.0], requires_grad=True)
    per_image = background_suppression_loss(fg_score, bg_score)
    # ReLU'd: S = (2, 1, 0, 3), S_bg = (1, 3, 0.5, 0) -> 1/2, clamped 1, clamped 1, 0/3.
    torch.testing.assert_close(per_image, torch.tensor([0.5, 1.0, 1.0, 0.0]))
    per_image.sum().backward()
    torch.testing.assert_close(bg_score.grad, torch.tensor([0.5, 0.0, 0.0, 0.0]))
    assert fg_score.grad is None


def test_resize_map_pools_integer_factors_and_interpolates_others():
    maps = torch.arange(16.0).view(1, 1, 4, 4)
    assert resize_map(maps, (4, 4)) is maps
    torch.testing.assert_close(resize_map(maps, (2, 2)), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))
    expected = F.interpolate(maps, size=(3, 3), mode="bilinear", align_corners=False)
    torch.testing.assert_close(resize_map(maps, (3, 3)), expected)


def test_drawn_classes_are_positive_uniform_and_seeded():
    cls_label = torch.tensor([[1.0, 0.0, 1.0, 0.0, 1.0]]).expand(600, -1)
    torch.manual_seed(3)
    first = draw_positive_classes(cls_label)
    torch.manual_seed(3)
    assert torch.equal(first, draw_positive_classes(cls_label))
    counts = torch.bincount(first, minlength=5)
    assert counts[[1, 3]].sum() == 0
    assert counts[[0, 2, 4]].min() > 150  # about 200 each
    with pytest.raises(ValueError, match="at least one foreground class"):
        draw_positive_classes(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


def test_loss_dict_weights_come_from_config():
    model = make_bas(frg_weight=0.5, bas_weight=2.0, ac_weight=3.0)
    x = torch.randn(2, 3, SIZE, SIZE)
    samples = [{"cls_label": torch.tensor([1.0, 0.0, 0.0])}, {"cls_label": torch.tensor([0.0, 1.0, 1.0])}]
    losses = model(x, samples, mode="loss")
    assert set(losses) == {"loss_mcls", "loss_frg", "loss_bas", "loss_ac", "frg", "bas", "ac"}
    for key, weight in (("frg", 0.5), ("bas", 2.0), ("ac", 3.0)):
        torch.testing.assert_close(losses[f"loss_{key}"].detach(), weight * losses[key])
        assert not losses[key].requires_grad
    with pytest.raises(ValueError, match="equal-size"):
        model(list(x), samples, mode="loss")


def test_class_maps_and_predict():
    model = MODELS.build(dict(type="BAS", num_classes=4, backbone=TOY_BACKBONE)).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        fpm = model.class_maps(x)
        cam_maps = model.class_maps(x, source="cam")
        logits, cam, raw_fpm = model(x, mode="tensor")
        stacked = model(x, [{"img_id": "a"}, {"img_id": "b"}], mode="predict")
        listed = model([x[0], x[1, :, :48, :56]], [{"img_id": "a"}, {"img_id": "b"}], mode="predict")
    assert fpm.shape == cam_maps.shape == (2, 3, SIZE // 16, SIZE // 16)
    assert torch.equal(fpm, raw_fpm) and (fpm > 0).all() and (fpm < 1).all()
    assert torch.equal(cam_maps, F.relu(cam)) and (cam_maps >= 0).all() and (cam < 0).any()
    assert [r["img_id"] for r in stacked] == ["a", "b"]
    for result, row in zip(stacked, torch.sigmoid(logits)):
        assert result["cls_score"].shape == (3,)
        torch.testing.assert_close(result["cls_score"], row)
    torch.testing.assert_close(listed[0]["cls_score"], stacked[0]["cls_score"], rtol=1e-5, atol=1e-6)
    assert ((listed[1]["cls_score"] > 0) & (listed[1]["cls_score"] < 1)).all()
    with pytest.raises(ValueError, match="source"):
        model.class_maps(x, source="irn")


def test_a_few_steps_reduce_the_total_loss():
    model = make_bas(seed=5)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    # One positive per image: the drawn class is fixed, so the losses change only with the weights.
    samples = [{"cls_label": F.one_hot(torch.tensor(c), 3).float()} for c in (0, 1, 2, 0)]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)

    def total() -> torch.Tensor:
        return sum(v for k, v in model(x, samples, mode="loss").items() if "loss" in k)

    first = total()
    for _ in range(5):
        optimizer.zero_grad()
        loss = total()
        loss.backward()
        optimizer.step()
    assert total().item() < 0.7 * first.item()


# ---------------------------------------------------------------------------------------------- WSOL


def make_wsol(**kwargs) -> BASWSOL:
    torch.manual_seed(0)
    backbone = dict(name="test_resnet", output_stride=8)
    return BASWSOL(num_classes=5, backbone=backbone, mid_pool=2, head_channels=16, **kwargs).train()


@pytest.fixture
def wsol_steered():
    model = make_wsol()
    x = torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    labels = torch.tensor([4, 0, 2])
    steer_classifier(model, x, labels, mid_pool=model.mid_pool)
    return model, x, labels


def test_wsol_losses_match_deepcopy_reference(wsol_steered):
    model, x, labels = wsol_steered
    ours = model.loss_terms(x, labels)
    mid = model.backbone.to_mid(x)
    assert mid.shape[-1] == SIZE // 8
    cam = model.classifier(model.backbone.mid_to_last(F.max_pool2d(mid, 2)))
    fg_mask = torch.sigmoid(model.generator(mid))[torch.arange(3), labels].unsqueeze(1)
    later = copy.deepcopy(torch.nn.Sequential(model.backbone.mid_to_last, model.classifier)).train()
    erased = later(F.max_pool2d(mid.detach() * (1 - fg_mask), 2)).mean(dim=(2, 3))[torch.arange(3), labels]
    torch.testing.assert_close(ours["cls"], F.cross_entropy(cam.mean(dim=(2, 3)), labels))
    guided = (cam * F.avg_pool2d(fg_mask, 2)).mean(dim=(2, 3))
    torch.testing.assert_close(ours["frg"], F.cross_entropy(guided, labels))
    torch.testing.assert_close(ours["ac"], fg_mask.mean())
    assert erased[0].item() == pytest.approx(1.0, abs=1e-4)
    assert ours["bas"].item() == pytest.approx((0.5 + 0.25 + 1.0) / 3, abs=1e-4)


# F is not detached in the WSOL guidance, so L_frg trains everything.
WSOL_GRADIENT_ROUTES = {
    "cls": {"to_mid", "mid_to_last", "classifier"},
    "frg": {"to_mid", "mid_to_last", "classifier", "generator"},
    "bas": {"to_mid", "generator"},
    "ac": {"to_mid", "generator"},
}


def test_wsol_gradient_routing(wsol_steered):
    model, x, labels = wsol_steered
    assert reached_groups(model, model.loss_terms(x, labels)) == WSOL_GRADIENT_ROUTES


def test_wsol_topk_map_averaging_and_predict():
    model = make_wsol(topk=3).eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        logits, _, fpm = model(x, mode="tensor")
        top3 = model.foreground_map(x)
        gt_map = model.foreground_map(x, topk=1, labels=torch.tensor([1, 3]))
        top1 = model.foreground_map(x, topk=1)
        results = model(x, [{"gt_label": 1}, {"img_id": "no label"}], mode="predict")
    order = logits.argsort(dim=1, descending=True)
    for i in range(2):
        torch.testing.assert_close(
            top3[i], (fpm[i, order[i, 0]] + fpm[i, order[i, 1]] + fpm[i, order[i, 2]]) / 3
        )
        torch.testing.assert_close(top1[i], fpm[i, order[i, 0]])
        torch.testing.assert_close(results[i]["loc_map"], top3[i])
        torch.testing.assert_close(results[i]["cls_score"].sum(), torch.tensor(1.0))
    torch.testing.assert_close(gt_map, fpm[[0, 1], [1, 3]])
    assert top3.shape == (2, SIZE // 8, SIZE // 8)


def test_wsol_single_labels():
    samples = [
        {"gt_label": 3, "cls_label": torch.tensor([1.0, 0.0])},
        {"cls_label": torch.tensor([0.0, 1.0])},
    ]
    assert single_labels(samples, torch.device("cpu")).tolist() == [3, 1]
    with pytest.raises(ValueError, match="exactly one class"):
        single_labels([{"img_id": "x", "cls_label": torch.tensor([1.0, 1.0])}], torch.device("cpu"))
