"""Feature models, extraction and probes: IIC's objective, the multi-scale grid, files, probes, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from wsss.cli import eval_features, extract_features
from wsss.cli import train as train_tool
from wsss.data.label_io import write_label_png
from wsss.features.base import FeatureModel
from wsss.features.extract import ExtractionSettings, multiscale_features
from wsss.features.io import FeatureFolder, read_feature_file, save_feature_file
from wsss.features.knn import NeighbourPairs, nearest_neighbours, save_neighbours
from wsss.features.probe import ProbeCells, cluster_probe, context_separability, linear_probe
from wsss.features.scratch import IICFeatureNet, iic_mutual_information
from wsss.features.stego import STEGO
from wsss.features.vit import DinoViT
from wsss.nn.preprocessor import normalized_image

REPO = Path(__file__).resolve().parents[1]


def test_iic_mutual_information_matches_hand_values():
    # Two clusters, identical one-hot views, half the cells each: joint diag(1/2, 1/2) -> MI = log 2.
    a = torch.zeros(1, 2, 2, 2)
    a[0, 0, 0], a[0, 1, 1] = 1, 1
    assert math.isclose(float(iic_mutual_information(a, a, displacement=0)), math.log(2), rel_tol=1e-5)
    # Uniform assignments carry no information.
    uniform = torch.full((2, 3, 4, 4), 1 / 3)
    assert abs(float(iic_mutual_information(uniform, uniform, displacement=1))) < 1e-6
    # With displacement 1 on a 2x2 map every ordered pair of cells is counted once: the joint of the
    # classes is the product of its marginals, and the mutual information is 0.
    assert abs(float(iic_mutual_information(a, a, displacement=1))) < 1e-6


def test_scratch_net_grid_and_its_loss_falls_on_two_texture_images():
    torch.manual_seed(0)
    model = IICFeatureNet(feature_dim=8, width=4, clusters=3, overclusters=5)
    assert model.features(torch.zeros(2, 3, 37, 50)).shape == (
        2,
        4 + 8 + 8,
        math.ceil(37 / 4),
        math.ceil(50 / 4),
    )
    images = torch.zeros(4, 3, 32, 32)
    images[:, 0, :, :16] = 2.0  # left half red, right half a stripe texture
    images[:, 1, ::2, 16:] = 2.0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = sum(model.loss(images, [{} for _ in range(4)]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.1


class PoolFeatures(FeatureModel):
    """A fixed feature model: the input average-pooled at stride 4 (3 channels)."""

    stride, feature_dim = 4, 3

    def features(self, inputs):
        return F.avg_pool2d(inputs, 4)


def test_multiscale_features_lie_on_the_image_grid_and_average_flips():
    model = PoolFeatures()
    image = torch.rand(3, 37, 50)
    one = multiscale_features(model, image, ExtractionSettings(scales=(1.0,), flip=False))
    padded = F.pad(image[None], (0, 2, 0, 3))  # to 40 x 52
    assert one.shape == (3, 10, 13)
    assert torch.allclose(one, F.avg_pool2d(padded, 4)[0], atol=1e-6)
    # On a 4-multiple image, average pooling commutes with the mirror: flip changes nothing.
    square = torch.rand(3, 32, 32)
    plain = multiscale_features(model, square, ExtractionSettings(scales=(1.0,), flip=False))
    flipped = multiscale_features(model, square, ExtractionSettings(scales=(1.0,), flip=True))
    assert torch.allclose(plain, flipped, atol=1e-6)
    # A constant image gives the constant at every scale (padding excluded: a 4-multiple size).
    constant = multiscale_features(
        model, torch.full((3, 32, 32), 0.5), ExtractionSettings(scales=(1.0, 0.5, 1.5))
    )
    assert constant.shape == (3, 8, 8) and torch.allclose(constant, torch.full_like(constant, 0.5), atol=1e-5)


def test_feature_files_round_trip_and_folders_refuse_mixed_extractions(tmp_path):
    features = np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)
    save_feature_file(tmp_path / "a.npz", features, 8, (20, 30))
    read, stride, size = read_feature_file(tmp_path / "a.npz")
    assert np.allclose(read, features, atol=1e-2) and stride == 8 and size == (20, 30)
    with pytest.raises(ValueError, match="do not cover a 20x40 image at stride 8"):
        save_feature_file(tmp_path / "b.npz", features, 8, (20, 40))
    (tmp_path / "manifest.json").write_text(json.dumps({"settings": {}, "feature_dim": 6, "stride": 8}))
    with pytest.raises(ValueError, match="a.npz: D=5, stride 8 but .*manifest.json says D=6"):
        FeatureFolder(tmp_path).read("a")


def probe_cells(noise: float, seed: int = 0) -> ProbeCells:
    """Cells of 3 classes over 6 images; a context (value 1) lies on class-0 cells beside class 2."""
    rng = np.random.default_rng(seed)
    classes = np.tile(np.repeat([0, 1, 2], 40), 6)
    image = np.repeat(np.arange(6), 120)
    contexts = np.where((classes == 0) & (np.arange(len(classes)) % 2 == 0), 1, 0)
    centres = np.eye(3, 4) * 4
    features = centres[classes] + noise * rng.normal(size=(len(classes), 4))
    features[contexts == 1, 3] += 4  # the context is its own direction
    return ProbeCells(features.astype(np.float32), classes, contexts, image)


def test_probes_score_separable_features_perfectly_and_noise_poorly():
    clean = probe_cells(noise=0.1)
    assert cluster_probe(clean, 3)["mIoU"] == pytest.approx(100.0)
    assert cluster_probe(clean, 3, extra_clusters=1)["mIoU"] == pytest.approx(
        100.0
    )  # context cluster -> class 0
    assert linear_probe(clean, 3)["mIoU"] == pytest.approx(100.0)
    assert context_separability(clean, {1: ("water", 2)})["water"]["balanced_accuracy"] == pytest.approx(1.0)
    noisy = probe_cells(noise=20.0)
    assert linear_probe(noisy, 3)["mIoU"] < 60
    assert context_separability(noisy, {1: ("water", 2)})["water"]["balanced_accuracy"] < 0.8


def feature_config(tmp_path: Path) -> Path:
    config = tmp_path / "feat_tiny.py"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/features/scratch_shapes.py')!r}]\n"
        "model = dict(feature_dim=8, width=4, clusters=3, overclusters=5)\n"
        "train_dataloader = dict(batch_size=3, num_workers=0)\n"
        "crop_size = 32\n"
    )
    return config


def test_train_extract_resume_and_probe_with_the_tools(tiny_voc, tmp_path, capsys, tool_error):
    config, work, out = feature_config(tmp_path), tmp_path / "work", tmp_path / "feats"
    assert train_tool.main([str(config), "--data-root", str(tiny_voc), "--work-dir", str(work), "--cfg-options",
                            "train_cfg.max_iters=2", "default_hooks.checkpoint.interval=2"]) == 0  # fmt: skip
    args = [str(config), str(work), "--out", str(out), "--data-root", str(tiny_voc), "--scales", "1.0", "0.5",
            "--flip", "--no-progress", "--workers", "0"]  # fmt: skip
    assert extract_features.main(args) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["feature_dim"], manifest["stride"]) == (4 + 8 + 8, 4)  # the hypercolumn of width 4
    assert (manifest["count"], manifest["complete"]) == (6, True)
    features, stride, size = read_feature_file(out / "tiny_000.npz")
    assert features.shape == (20, 12, 12) and stride == 4 and size == (48, 48)
    capsys.readouterr()
    assert extract_features.main(args) == 0 and "0 written, 6 already there" in capsys.readouterr().out
    tool_error(extract_features.main([*args[:-4], "1.0", "--no-progress"]), "records other settings")
    ids = tiny_voc / "ImageSets" / "Segmentation" / "train.txt"
    code = eval_features.main(["--features", str(out), "--gt", str(tiny_voc / "SegmentationClass"), "--list",
                               str(ids), "--classes", str(tiny_voc / "class_names.txt"), "--json",
                               str(tmp_path / "probe.json"), "--no-progress"])  # fmt: skip
    assert code == 0
    probe = json.loads((tmp_path / "probe.json").read_text())
    assert (
        probe["cells"] == 6 * 144 and 0 <= probe["linear"]["mIoU"] <= 100 and len(probe["linear"]["IoU"]) == 3
    )


def test_extraction_errors_name_the_file_and_the_fix(tiny_voc, tmp_path, tool_error):
    config = feature_config(tmp_path)
    base = ["--data-root", str(tiny_voc), "--no-progress", "--workers", "0"]
    tool_error(extract_features.main([str(config), "--out", str(tmp_path / "a"), *base]),
               "IICFeatureNet learns its weights; give its CHECKPOINT")  # fmt: skip
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(3, 3)}}, other)
    tool_error(
        extract_features.main([str(config), str(other), "--out", str(tmp_path / "b"), *base]), "other.pth"
    )
    Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(tiny_voc / "JPEGImages" / "tiny_000.jpg")
    write_label_png(tiny_voc / "SegmentationClass" / "tiny_000.png", np.zeros((3, 3), np.uint8))
    tool_error(extract_features.main([str(config), "--random-init", "--out", str(tmp_path / "c"), *base]),
               "'tiny_000' is 3x3, smaller than one feature cell")  # fmt: skip


COCO_MINI = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco-mini"
TINY_VIT = dict(arch="vit_small_patch8_224", vit_kwargs=dict(embed_dim=16, depth=1, num_heads=2, img_size=64))


def saved_tiny_vit(tmp_path: Path, **kwargs) -> tuple[DinoViT, Path]:
    torch.manual_seed(0)
    model = DinoViT(**{**TINY_VIT, **kwargs})
    path = tmp_path / "tiny_vit.pth"
    torch.save(model.vit.state_dict(), path)
    return model, path


def test_dino_vit_loads_local_weights_and_refuses_other_files(tmp_path):
    model, path = saved_tiny_vit(tmp_path)
    loaded = DinoViT(**TINY_VIT, weights=str(path))
    x = torch.randn(2, 3, 40, 24)
    assert loaded.stride == 8 and loaded.feature_dim == 16 and not loaded.training
    assert torch.allclose(loaded.features(x), model.features(x), atol=1e-6)
    assert loaded.features(x).shape == (2, 16, 5, 3)
    other = tmp_path / "other.pth"
    torch.save(
        DinoViT("vit_small_patch8_224", vit_kwargs=dict(embed_dim=24, depth=1, num_heads=2)).vit.state_dict(),
        other,
    )
    with pytest.raises(ValueError, match="other.pth: holds another architecture than vit_small_patch8_224"):
        DinoViT(**TINY_VIT, weights=str(other))
    extra = {**torch.load(path), "stray.weight": torch.zeros(1)}
    extra.pop("norm.bias")
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"missing \['norm.bias'\], unexpected \['stray.weight'\]"):
        DinoViT(**TINY_VIT, weights=str(tmp_path / "extra.pth"))
    with pytest.raises(ValueError, match="not a multiple of the 8-px patch"):
        loaded.features(torch.zeros(1, 3, 20, 24))


def test_multiscale_vit_features_on_real_coco_images(tmp_path):
    if not COCO_MINI.is_dir():
        pytest.skip("shared/datasets/coco-mini is not available")
    _, path = saved_tiny_vit(tmp_path)
    model = DinoViT(**TINY_VIT, weights=str(path)).eval()
    for image_path in sorted((COCO_MINI / "train2017").glob("*.jpg"))[:2]:
        uint8 = torch.from_numpy(np.asarray(Image.open(image_path).convert("RGB")).copy()).permute(2, 0, 1)
        image = normalized_image(model, uint8)
        height, width = image.shape[-2:]
        small = F.interpolate(image[None], scale_factor=0.25, mode="bilinear", align_corners=False)[0]
        features = multiscale_features(model, small, ExtractionSettings(scales=(1.0, 0.5), flip=True))
        assert features.shape == (16, math.ceil(small.shape[1] / 8), math.ceil(small.shape[2] / 8))
        assert torch.isfinite(features).all() and height > 400
        single = multiscale_features(model, small, ExtractionSettings(scales=(1.0,), flip=False))
        padded = F.pad(small[None], (0, -small.shape[2] % 8, 0, -small.shape[1] % 8))
        assert torch.allclose(single, model.features(padded)[0], atol=1e-4)


def test_stego_head_learns_correspondences_and_pairs_come_from_neighbours(tiny_voc, tmp_path):
    _, path = saved_tiny_vit(tmp_path)
    torch.manual_seed(0)
    model = STEGO(backbone=dict(type="DinoViT", **TINY_VIT, weights=str(path)), dim=6, points=5)
    assert (
        model.stride == 8
        and model.feature_dim == 6
        and model.features(torch.zeros(1, 3, 32, 32)).shape == (1, 6, 4, 4)
    )
    backbone_before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    images = torch.randn(4, 3, 32, 32)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    losses = []
    for _ in range(20):
        torch.manual_seed(1)  # the same points each step: the loss of one fixed problem falls
        loss = sum(model.loss(images, [{} for _ in range(4)]).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in backbone_before.items())  # frozen
    # Neighbours: hand descriptors, nearest first, the image itself excluded.
    descriptors = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=1)
    assert nearest_neighbours(descriptors, ["a", "b", "c", "d"], 2) == {
        "a": ["b", "d"], "b": ["a", "d"], "c": ["d", "b"], "d": ["c", "b"]}  # fmt: skip
    ids = (tiny_voc / "ImageSets" / "Segmentation" / "train.txt").read_text().split()
    save_neighbours(tmp_path / "knn.json", {i: [ids[(n + 1) % len(ids)]] for n, i in enumerate(ids)}, 1, 32)
    pairs = NeighbourPairs(
        dict(type="ImageLabelDataset", data_root=str(tiny_voc), split="train"), str(tmp_path / "knn.json")
    )
    item = pairs[0]
    assert torch.equal(item["data_samples"]["pair_inputs"], pairs.dataset[1]["inputs"]) and len(pairs) == 6
    save_neighbours(tmp_path / "short.json", {ids[0]: [ids[1]]}, 1, 32)
    with pytest.raises(ValueError, match="short.json: no neighbours for 5 of 6 images"):
        NeighbourPairs(
            dict(type="ImageLabelDataset", data_root=str(tiny_voc), split="train"),
            str(tmp_path / "short.json"),
        )
