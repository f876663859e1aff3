"""MARS debiasing: each equation against a hand-computed case, k-means, the folder run and its tool."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsss.cli import mars as mars_tool
from wsss.data.classes import write_class_names
from wsss.data.label_io import BIASED_INDEX, IGNORE_INDEX, read_label_png, write_label_png
from wsss.debias.mars import (
    MARSSettings,
    background_distance,
    cluster_images,
    debias_label,
    debiased_centroids,
    debiased_score,
)
from wsss.debias.run import CENTROIDS_FILE, CHUNK, CentroidTable, cluster_dataset, run_mars, score_centroids
from wsss.features.grid import cell_labels
from wsss.kmeans import batched_kmeans

REPO = Path(__file__).resolve().parents[1]
THRESHOLD = MARSSettings(binarize="threshold", threshold=0.5)


# --- the equations --------------------------------------------------------------------------------


def test_eq1_mean_distance_to_every_background_centroid():
    foreground = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    background = np.array([[1.0, 0.0], [3.0, 0.0], [0.0, -1.0]])
    brute = [
        np.mean([(1 - (f @ b) / (np.linalg.norm(f) * np.linalg.norm(b))) / 2 for b in background])
        for f in foreground
    ]
    scores = background_distance(foreground, background)
    np.testing.assert_allclose(scores, brute, rtol=1e-6)
    # by hand: the first is identical to two background centroids and orthogonal to one: (0 + 0 + 0.5) / 3
    assert scores[0] == pytest.approx(0.5 / 3)
    with pytest.raises(ValueError, match="no background centroid"):
        background_distance(foreground, np.zeros((0, 2)))


def test_eqs2_3_top_alpha_share_of_each_class_averaged():
    foreground = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [2.0, 0.0]], np.float32)
    classes = np.array([1, 1, 1, 2])
    scores = np.array([0.9, 0.1, 0.5, 0.3])
    debiased, selected = debiased_centroids(foreground, classes, scores, alpha=0.4, num_classes=3)
    # class 1: ceil(0.4 * 3) = 2 centroids, the scores 0.9 and 0.5; class 2: ceil(0.4) = 1
    np.testing.assert_allclose(debiased[1], [2.0, 1.5])
    np.testing.assert_allclose(debiased[2], [2.0, 0.0])
    assert np.isnan(debiased[0]).all() and selected.tolist() == [True, False, True, True]


def test_eq4_score_is_relu_of_the_best_cosine_over_the_image_classes():
    features = np.zeros((2, 1, 3), np.float32)
    features[:, 0, 0] = [1, 0]  # like class 1
    features[:, 0, 1] = [0, 1]  # like class 2
    features[:, 0, 2] = [-1, 0]  # opposite of class 1, orthogonal to class 2
    debiased = np.array([[np.nan, np.nan], [2.0, 0.0], [0.0, 5.0]], np.float32)
    np.testing.assert_allclose(debiased_score(features, debiased, [1]), [[1.0, 0.0, 0.0]])
    np.testing.assert_allclose(debiased_score(features, debiased, [1, 2]), [[1.0, 1.0, 0.0]])


def test_eq5_only_foreground_pixels_become_biased():
    base = np.array([[0, 1, 2], [IGNORE_INDEX, 1, BIASED_INDEX]], np.uint8)
    mask = np.array([[False, False, True], [False, True, True]])
    assert debias_label(base, mask).tolist() == [[0, BIASED_INDEX, 2], [IGNORE_INDEX, 1, BIASED_INDEX]]


def test_cell_labels_take_the_majority_and_skip_ignore():
    label = np.array(
        [
            [1, 1, 0, 0, 2],
            [1, 0, 0, 0, 2],
            [IGNORE_INDEX, IGNORE_INDEX, 2, 2, 0],
            [IGNORE_INDEX, BIASED_INDEX, 2, 0, 0],
        ],
        np.uint8,
    )
    cells = cell_labels(label, (2, 3), stride=2)  # the 4x5 label on a padded 2x3 grid
    assert cells.tolist() == [[1, 0, 2], [-1, 2, 0]]
    with pytest.raises(ValueError, match="does not cover a 4x5 label"):
        cell_labels(label, (2, 2), stride=2)


def test_kmeans_separates_clusters_and_gives_small_regions_fewer_centroids():
    points = torch.zeros(2, 6, 2)
    points[0] = torch.tensor([[0, 0], [0.1, 0], [0, 0.1], [5, 5], [5.1, 5], [5, 5.1]])
    points[1, 0] = torch.tensor([3.0, 3.0])
    valid = torch.zeros(2, 6, dtype=torch.bool)
    valid[0] = True
    valid[1, 0] = True  # a region of one point
    centroids, active = batched_kmeans(points, valid, k=2, generator=torch.Generator().manual_seed(1))
    assert active[0].all() and active[1].tolist() == [True, False]
    found = sorted(centroids[0].tolist())
    np.testing.assert_allclose(found, [[0.1 / 3, 0.1 / 3], [5 + 0.1 / 3, 5 + 0.1 / 3]], atol=1e-5)
    np.testing.assert_allclose(centroids[1, 0], [3.0, 3.0])
    again, _ = batched_kmeans(points, valid, k=2, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again, centroids)


# --- the folder run -----------------------------------------------------------------------------


SIZE, STRIDE = 32, 4
BOAT, WATER, SKY = np.eye(4, dtype=np.float32)[:3]


def synthetic_dataset(root: Path, count: int = 8) -> tuple[Path, Path, Path, list[str]]:
    """Images whose boat pseudo labels spread over the water below the boat, as biased labels do.

    Features: boat cells point one way, water cells another, sky a third. Half the images have a boat;
    every image has water in its lower half, labelled background except under a boat's label.
    """
    pseudo, features, images = root / "pseudo", root / "features", root / "images"
    for folder in (pseudo, features, images):
        folder.mkdir(parents=True)
    ids, rng = [], np.random.default_rng(0)
    for index in range(count):
        image_id = f"img_{index}"
        ids.append(image_id)
        grid = np.zeros((4, SIZE // STRIDE, SIZE // STRIDE), np.float32)
        grid[:, :4] = SKY[:, None, None]
        grid[:, 4:] = WATER[:, None, None]
        label = np.zeros((SIZE, SIZE), np.uint8)
        if index % 2 == 0:
            grid[:, 2:4, 2:6] = BOAT[:, None, None]
            label[8:16, 8:24] = 1  # the boat
            label[16:24, 8:24] = 1  # water under it, wrongly labelled boat
        grid += rng.normal(0, 0.05, grid.shape).astype(np.float32)
        np.savez(
            features / f"{image_id}.npz",
            features=grid.astype(np.float16),
            stride=STRIDE,
            image_size=(SIZE, SIZE),
        )
        write_label_png(pseudo / f"{image_id}.png", label)
        Image.fromarray(np.full((SIZE, SIZE, 3), 128, np.uint8)).save(images / f"{image_id}.jpg")
    return pseudo, features, images, ids


def test_run_removes_the_water_under_boats_and_keeps_the_boats(tmp_path):
    pseudo, features, images, ids = synthetic_dataset(tmp_path)
    out = tmp_path / "out"
    manifest = run_mars(pseudo, features, out, ids, ("background", "boat"), THRESHOLD, images, progress=False)
    for image_id in ids[::2]:
        debiased = read_label_png(out / f"{image_id}.png")
        base = read_label_png(pseudo / f"{image_id}.png")
        assert (debiased[9:15, 9:23] == 1).all()  # the boat stays (its corners blur with the score's resize)
        assert (debiased[16:24, 8:24] == BIASED_INDEX).all()  # the water becomes biased
        assert ((debiased == BIASED_INDEX) <= (base > 0)).all() and (debiased[base == 0] == 0).all()
    assert (
        0.5 <= manifest["per_class"]["boat"]["biased_share"] < 0.53
    )  # the water half, and a few boat corners
    table = CentroidTable.load(out / CENTROIDS_FILE)
    boat = table.classes == 1
    assert boat.sum() == 8  # two centroids in each of the four boat images
    # the selected ceil(0.4 * 8) = 4 are the boat-like ones (far from the water and sky backgrounds)
    assert table.selected[boat].sum() == 4
    assert (table.centroids[boat & table.selected] @ BOAT > 0.9).all()
    assert json.loads((out / "manifest.json").read_text())["complete"] is True
    with Image.open(out / "scores" / f"{ids[0]}.png") as score:
        assert score.mode == "L" and score.size == (SIZE, SIZE)


def test_run_resumes_and_refuses_other_settings_and_missing_features(tmp_path):
    pseudo, features, images, ids = synthetic_dataset(tmp_path)
    out = tmp_path / "out"
    run_mars(pseudo, features, out, ids, ("background", "boat"), THRESHOLD, images, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    (out / f"{ids[1]}.png").unlink()
    run_mars(pseudo, features, out, ids, ("background", "boat"), THRESHOLD, images, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert after.keys() == before.keys() and all(
        after[k] == before[k] for k in before if k != f"{ids[1]}.png"
    )
    with pytest.raises(ValueError, match="records other settings"):
        run_mars(pseudo, features, out, ids, ("background", "boat"), MARSSettings(binarize="threshold", alpha=0.6),
                 images, progress=False)  # fmt: skip
    (features / f"{ids[3]}.npz").unlink()
    with pytest.raises(FileNotFoundError, match=rf"no features for 1 of 8 .*\(first: {ids[3]}\)"):
        run_mars(pseudo, features, tmp_path / "other", ids, ("background", "boat"), THRESHOLD, progress=False)


def random_sample(image_id: str) -> tuple[np.ndarray, np.ndarray]:
    """An in-memory sample loader: 8-d features on a 6x6 grid, background and class 1 or 2."""
    rng = np.random.default_rng(int(image_id))
    cells = np.zeros((6, 6), np.int64)
    cells[1:4, 2:5] = 1 + int(image_id) % 2
    return rng.standard_normal((8, 6, 6)).astype(np.float32), cells


def test_cluster_dataset_keeps_id_order_and_seeds_each_chunk_from_the_settings():
    ids = [str(i) for i in range(CHUNK * 2 + 5)]  # three chunks, the last one short
    settings = MARSSettings(binarize="threshold", seed=3)
    per_image = cluster_dataset(random_sample, ids, settings, workers=2, progress=False)
    assert len(per_image) == len(ids)
    for chunk, start in enumerate(range(0, len(ids), CHUNK)):
        chunk_ids = ids[start : start + CHUNK]
        generator = torch.Generator().manual_seed(3 * 1_000_003 + chunk)
        expected = cluster_images([random_sample(i) for i in chunk_ids], settings, generator)
        for got, want in zip(per_image[start : start + CHUNK], expected):
            assert np.array_equal(got.classes, want.classes) and np.array_equal(got.centroids, want.centroids)
    table = score_centroids(per_image, ids, settings.alpha, 3)
    assert table.ids == ids and len(table.classes) == sum(len(c.classes) for c in per_image)
    assert np.array_equal(table.image[table.classes == 0], np.repeat(np.arange(len(ids)), 2))  # k_bg = 2 each
    assert (
        np.isnan(table.score[table.classes == 0]).all() and not np.isnan(table.score[table.classes > 0]).any()
    )


def test_worker_count_does_not_change_the_result(tmp_path):
    pseudo, features, images, ids = synthetic_dataset(tmp_path, count=40)
    one = run_mars(
        pseudo, features, tmp_path / "one", ids, ("background", "boat"), THRESHOLD, workers=1, progress=False
    )
    two = run_mars(
        pseudo, features, tmp_path / "two", ids, ("background", "boat"), THRESHOLD, workers=2, progress=False
    )
    assert one["per_class"] == two["per_class"]
    a, b = (
        CentroidTable.load(tmp_path / "one" / CENTROIDS_FILE),
        CentroidTable.load(tmp_path / "two" / CENTROIDS_FILE),
    )
    assert np.array_equal(a.centroids, b.centroids) and np.array_equal(a.debiased, b.debiased, equal_nan=True)


def test_tool_runs_a_config_and_names_bad_input(tmp_path, capsys, tool_error):
    pseudo, features, images, ids = synthetic_dataset(tmp_path)
    write_class_names(tmp_path / "class_names.txt", ("background", "boat"))
    config = tmp_path / "mars.py"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/debias/mars_shapes.py')!r}]\nmars = dict(binarize='threshold')\n"
    )
    args = [str(config), "--pseudo", str(pseudo), "--features", str(features), "--images", str(images),
            "--classes", str(tmp_path / "class_names.txt"), "--no-progress"]  # fmt: skip
    assert mars_tool.main([*args, "--out", str(tmp_path / "out")]) == 0
    assert "boat: 51.6% of its pixels marked biased" in capsys.readouterr().out
    bad = tmp_path / "bad_stride"
    bad.mkdir()
    for image_id in ids:
        np.savez(
            bad / f"{image_id}.npz",
            features=np.zeros((4, 5, 5), np.float16),
            stride=STRIDE,
            image_size=(SIZE, SIZE),
        )
    code = mars_tool.main([*args[:4], str(bad), *args[5:], "--out", str(tmp_path / "o2")])
    tool_error(code, r"img_0.npz: a 5x5 feature grid at stride 4 does not cover a 32x32 label")
    config.write_text(f"_base_ = [{str(REPO / 'configs/debias/mars_shapes.py')!r}]\nmars = dict(k_foo=2)\n")
    tool_error(
        mars_tool.main([*args, "--out", str(tmp_path / "o3")]), r"unknown MARS setting\(s\) \['k_foo'\]"
    )


def test_centring_removes_a_shared_component_that_hides_the_bias(tmp_path):
    """Features of ReLU networks share one large positive component: with it every cosine is near 1
    and the water under the boat is kept; centring on the dataset's mean finds it again."""
    pseudo, features, images, ids = synthetic_dataset(tmp_path)
    offset = np.zeros(4, np.float32)
    offset[3] = 6.0  # a fourth channel, the same in every cell of every image
    sums, cells = np.zeros(4), 0
    for image_id in ids:
        path = features / f"{image_id}.npz"
        with np.load(path) as data:
            grid = data["features"].astype(np.float32) + offset[:, None, None]
        np.savez(path, features=grid.astype(np.float16), stride=STRIDE, image_size=(SIZE, SIZE))
        sums += grid.astype(np.float16).astype(np.float64).sum(axis=(1, 2))
        cells += grid.shape[1] * grid.shape[2]
    plain = run_mars(
        pseudo, features, tmp_path / "plain", ids, ("background", "boat"), THRESHOLD, progress=False
    )
    assert plain["per_class"]["boat"]["biased_share"] < 0.05  # every cosine is near 1: nothing is marked
    centred = MARSSettings(binarize="threshold", threshold=0.5, center=True)
    out = tmp_path / "centred"
    manifest = run_mars(pseudo, features, out, ids, ("background", "boat"), centred, progress=False)
    table = CentroidTable.load(out / CENTROIDS_FILE)
    np.testing.assert_allclose(table.mean, sums / cells, rtol=1e-5)
    assert 0.45 <= manifest["per_class"]["boat"]["biased_share"] < 0.55  # the water half again
    for image_id in ids[::2]:
        assert (read_label_png(out / f"{image_id}.png")[16:24, 8:24] == BIASED_INDEX).all()
