"""Seeds -> pseudo labels: seed files, threshold labelling, dense CRF, make_pseudo_labels and eval_seeds."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from wsss.cli import eval_seeds, eval_seg, make_pseudo_labels
from wsss.data.classes import write_class_names
from wsss.data.label_io import read_label_png, write_label_png
from wsss.evaluation.confusion import confusion_matrix
from wsss.evaluation.seeds import DEFAULT_THRESHOLDS, ThresholdSweep, parse_thresholds
from wsss.localize.seed_io import load_seeds, save_seeds
from wsss.pseudo import crf as crf_module
from wsss.pseudo.crf import (
    crf_labels_from_threshold,
    crf_labels_from_two_thresholds,
    crf_on_labels,
    crf_on_probs,
)
from wsss.pseudo.labels import labels_from_threshold, labels_from_two_thresholds

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
HAS_CRF = importlib.util.find_spec("pydensecrf") is not None
needs_crf = pytest.mark.skipif(not HAS_CRF, reason="pydensecrf is not installed (pip install 'wsss[crf]')")


# ---------------------------------------------------------------- seed files


def test_seed_round_trip_stores_float16(tmp_path):
    rng = np.random.default_rng(0)
    maps = rng.random((2, 5, 7))
    maps /= maps.max(axis=(1, 2), keepdims=True)
    path = tmp_path / "seeds" / "2007_000032.npz"
    save_seeds(path, [3, 15], maps)
    with np.load(path) as raw:  # read the file itself, not through load_seeds
        assert raw["maps"].dtype == np.float16 and raw["maps"].shape == (2, 5, 7)
        assert raw["keys"].tolist() == [3, 15]
    keys, loaded = load_seeds(path)
    assert keys.dtype == np.int64 and keys.tolist() == [3, 15]
    assert loaded.dtype == np.float32
    assert np.array_equal(loaded, maps.astype(np.float16).astype(np.float32))
    assert np.abs(loaded - maps).max() < 1e-3  # float16 keeps about 3 decimals in [0, 1]
    assert [p.name for p in path.parent.iterdir()] == ["2007_000032.npz"]  # no temporary left


def test_seed_without_classes_round_trips(tmp_path):
    save_seeds(tmp_path / "a.npz", np.zeros(0, dtype=np.int64), np.zeros((0, 4, 6)))
    keys, maps = load_seeds(tmp_path / "a.npz")
    assert keys.size == 0 and maps.shape == (0, 4, 6)


@pytest.mark.parametrize(
    ("keys", "maps", "message"),
    [
        ([1, 2], np.zeros((1, 4, 4)), "hold 1 class maps but keys list 2"),
        ([1], np.zeros((4, 4)), "(K, H, W)"),
        ([0], np.zeros((1, 4, 4)), "1-based"),
        ([2, 2], np.zeros((2, 4, 4)), "repeat"),
        ([1], np.full((1, 4, 4), 3.0), "divide each map by its maximum"),
        ([1], np.full((1, 4, 4), np.nan), "NaN"),
    ],
)
def test_save_seeds_rejects_bad_input(tmp_path, keys, maps, message):
    path = tmp_path / "bad.npz"
    with pytest.raises(ValueError, match=r"bad\.npz") as err:
        save_seeds(path, keys, maps)
    assert message in str(err.value)
    assert not any(tmp_path.iterdir())


def test_load_seeds_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        load_seeds(tmp_path / "nothere.npz")
    np.savez(tmp_path / "nomaps.npz", keys=np.array([1]))
    with pytest.raises(ValueError, match=r"nomaps\.npz: seed file lacks the array\(s\) maps"):
        load_seeds(tmp_path / "nomaps.npz")
    np.savez(tmp_path / "mismatch.npz", keys=np.array([1, 2]), maps=np.zeros((3, 4, 4), np.float16))
    with pytest.raises(ValueError, match=r"mismatch\.npz: maps hold 3 class maps but keys list 2"):
        load_seeds(tmp_path / "mismatch.npz")
    np.savez(tmp_path / "flat.npz", keys=np.array([1]), maps=np.zeros((4, 4), np.float16))
    with pytest.raises(ValueError, match=r"flat\.npz: maps must be a \(K, H, W\) array, got 2 dims"):
        load_seeds(tmp_path / "flat.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"junk\.npz: unreadable seed file"):
        load_seeds(tmp_path / "junk.npz")
    np.save(tmp_path / "plain.npy", np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match=r"plain\.npy: not an \.npz archive"):
        load_seeds(tmp_path / "plain.npy")


# ---------------------------------------------------------------- seed -> labels

# Two class maps (keys 2 and 5) on a 2x3 image, float32 so that a map equal to float32(t) is a tie.
KEYS = np.array([2, 5])
MAPS = np.array(
    [
        [[0.1, 0.5, 0.3], [0.8, 0.2, 0.6]],
        [[0.2, 0.4, 0.1], [0.8, 0.3, 0.7]],
    ],
    dtype=np.float32,
)


def test_labels_from_threshold_hand_computed():
    # t = 0.3: (0,0) max 0.2 -> bg; (0,1) 0.5 -> key 2; (0,2) 0.3 equals t -> bg (background wins ties);
    # (1,0) both 0.8 -> key 2 (the earlier key wins ties); (1,1) 0.3 equals t -> bg; (1,2) 0.7 -> key 5.
    labels = labels_from_threshold(KEYS, MAPS, 0.3)
    assert labels.dtype == np.uint8
    assert labels.tolist() == [[0, 2, 0], [2, 0, 5]]
    assert labels_from_threshold(KEYS, MAPS, 0.05).tolist() == [[5, 2, 2], [2, 5, 5]]
    assert labels_from_threshold(KEYS, MAPS, 0.9).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_labels_from_two_thresholds_hand_computed():
    # high 0.5, low 0.2: foreground where max > 0.5, background where max <= 0.2, 255 in between.
    # (0,1) max 0.5 equals the high threshold: not confident foreground -> 255.
    # (0,0) max 0.2 equals the low threshold: background.
    labels = labels_from_two_thresholds(KEYS, MAPS, 0.5, 0.2)
    assert labels.dtype == np.uint8
    assert labels.tolist() == [[0, 255, 255], [2, 255, 5]]


def test_labels_without_classes_are_background():
    maps = np.zeros((0, 3, 4), np.float32)
    assert not labels_from_threshold(np.zeros(0, np.int64), maps, 0.3).any()
    assert not labels_from_two_thresholds(np.zeros(0, np.int64), maps, 0.3, 0.1).any()


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_thresholds_must_lie_in_the_open_unit_interval(bad):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        labels_from_threshold(KEYS, MAPS, bad)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        labels_from_two_thresholds(KEYS, MAPS, bad, 0.1 if bad > 0.5 else 0.05)


def test_low_threshold_must_be_below_high():
    with pytest.raises(ValueError, match="must be below the foreground threshold"):
        labels_from_two_thresholds(KEYS, MAPS, 0.3, 0.3)
    with pytest.raises(ValueError, match="K = 3 keys"):
        labels_from_threshold(np.array([1, 2, 3]), MAPS, 0.3)


def test_threshold_labels_match_the_evaluation_sweep():
    """Labels at each t, scored by a plain confusion matrix, equal the sweep's matrix for that t."""
    rng = np.random.default_rng(1)
    keys = np.array([1, 3, 4])
    # float16 quantisation gives many exact ties with the thresholds and between maps.
    maps = rng.random((3, 30, 40)).astype(np.float16).astype(np.float32)
    maps[:, :5] = np.float32(0.25)
    gt = rng.integers(0, 5, size=(30, 40)).astype(np.uint8)
    gt[0, :7] = 255
    sweep = ThresholdSweep(5, DEFAULT_THRESHOLDS)
    sweep.update(keys, maps, gt)
    for t, matrix in zip(DEFAULT_THRESHOLDS, sweep.matrices()):
        assert np.array_equal(confusion_matrix(labels_from_threshold(keys, maps, t), gt, 5), matrix), t


# ---------------------------------------------------------------- dense CRF


def two_colour_scene(height=48, width=48):
    """A dark left half and a red right half, and the matching true labels (0 left, 1 right)."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = (20, 30, 40)
    image[:, width // 2 :] = (220, 40, 40)
    truth = np.zeros((height, width), np.int64)
    truth[:, width // 2 :] = 1
    return image, truth


@needs_crf
def test_crf_on_labels_cleans_salt_noise_toward_colour_edges():
    image, truth = two_colour_scene()
    rng = np.random.default_rng(0)
    noisy = truth.copy()
    flip = rng.random(truth.shape) < 0.2
    noisy[flip] = 1 - noisy[flip]
    noisy[rng.random(truth.shape) < 0.05] = 255  # unsure pixels: filled by the CRF
    image.setflags(write=False)  # as decoded by PIL through np.asarray
    refined = crf_on_labels(image, noisy, 2)
    assert refined.shape == truth.shape and set(np.unique(refined)) <= {0, 1}
    before = (noisy == truth).mean()
    after = (refined == truth).mean()
    assert before < 0.8 and after > 0.98


@needs_crf
def test_crf_on_probs_returns_marginals_that_follow_the_image():
    image, truth = two_colour_scene()
    rng = np.random.default_rng(1)
    foreground = np.clip(0.3 + 0.4 * truth + rng.normal(0, 0.25, truth.shape), 0.01, 0.99)
    probs = np.stack([1 - foreground, foreground]).astype(np.float32)
    marginals = crf_on_probs(image, probs)
    assert marginals.shape == probs.shape and marginals.dtype == np.float32
    assert np.allclose(marginals.sum(axis=0), 1, atol=1e-4)
    assert (probs.argmax(0) == truth).mean() < 0.85
    assert (marginals.argmax(0) == truth).mean() > 0.98


@needs_crf
def test_crf_seed_labels_snap_to_the_object_in_both_modes():
    image, truth = two_colour_scene()
    rng = np.random.default_rng(2)
    # A blurry class map: high on the red half, but noisy and bleeding past the edge.
    cam = np.clip(0.1 + 0.8 * truth + rng.normal(0, 0.2, truth.shape), 0, 1).astype(np.float32)[None]
    keys = np.array([7])
    expected = np.where(truth == 1, 7, 0)
    plain = labels_from_threshold(keys, cam, 0.5)
    refined = crf_labels_from_threshold(image, keys, cam, 0.5)
    assert refined.dtype == np.uint8 and set(np.unique(refined)) <= {0, 7}
    assert (plain == expected).mean() < 0.99 and (refined == expected).mean() > (plain == expected).mean()
    assert (refined == expected).mean() > 0.98
    plain_two = labels_from_two_thresholds(keys, cam, 0.6, 0.3)
    refined_two = crf_labels_from_two_thresholds(image, keys, cam, 0.6, 0.3)
    assert set(np.unique(refined_two)) <= {0, 7, 255}
    assert (refined_two == 255).sum() < (plain_two == 255).sum()
    decided = refined_two != 255
    assert (refined_two[decided] == expected[decided]).mean() > 0.98


def test_crf_without_pydensecrf_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    image, truth = two_colour_scene(8, 8)
    with pytest.raises(ImportError, match=r"pip install 'wsss\[crf\]'"):
        crf_on_labels(image, truth, 2)
    with pytest.raises(ImportError) as err:
        crf_on_probs(image, np.ones((2, 8, 8)))
    assert str(err.value) == crf_module.INSTALL_HINT


# ---------------------------------------------------------------- fixtures for the tools

IDS = ["2007_000001", "2007_000002", "2008_000003"]
# Image colour of each gt value (background, three classes, 255 drawn as background): distinct
# colours, so that the CRF's bilateral term has no reason to merge two classes.
CLASS_COLOURS = np.zeros((256, 3), np.uint8)
CLASS_COLOURS[[0, 1, 2, 3, 255]] = [(30, 30, 30), (200, 40, 40), (40, 200, 40), (40, 40, 200), (30, 30, 30)]


def ground_truth(index: int, height: int = 40, width: int = 48) -> np.ndarray:
    """A different gt mask per image: one or two class rectangles, and a 255 border on the first two."""
    gt = np.zeros((height, width), np.uint8)
    gt[5:25, 4:20] = 1 + index % 3
    if index != 1:
        gt[20:35, 28:44] = 1 + (index + 1) % 3
    if index < 2:
        gt[0, :] = 255
    return gt


def seeds_from_gt(gt: np.ndarray, inside: float = 0.9, outside: float = 0.1):
    """Seeds that any threshold in [outside, inside) turns back into ``gt`` (255 pixels aside)."""
    keys = np.array(sorted(set(np.unique(gt).tolist()) - {0, 255}))
    maps = np.stack([np.where(gt == key, inside, outside) for key in keys])
    return keys, maps


@pytest.fixture()
def dataset(tmp_path):
    """images/ (jpg and png) coloured by class, gt/, seeds/ from the gt, a split list and a class file."""
    rng = np.random.default_rng(3)
    for index, image_id in enumerate(IDS):
        gt = ground_truth(index)
        write_label_png(tmp_path / "gt" / f"{image_id}.png", gt)
        save_seeds(tmp_path / "seeds" / f"{image_id}.npz", *seeds_from_gt(gt))
        noise = rng.integers(-20, 21, (*gt.shape, 3))
        image = np.clip(CLASS_COLOURS[gt].astype(int) + noise, 0, 255).astype(np.uint8)
        (tmp_path / "images").mkdir(exist_ok=True)
        Image.fromarray(image).save(tmp_path / "images" / f"{image_id}{'.png' if index == 2 else '.jpg'}")
    (tmp_path / "train.txt").write_text("".join(f"{i}\n" for i in IDS))
    (tmp_path / "classes.txt").write_text("background\ncat\ndog\nbird\n")
    return tmp_path


def make(data: Path, out: str, *extra: str) -> int:
    argv = ["--seeds", str(data / "seeds"), "--images", str(data / "images"), "--out", str(data / out)]
    return make_pseudo_labels.main([*argv, "--no-progress", *extra])


def run_make(data: Path, out: str, *extra: str) -> dict:
    assert make(data, out, *extra) == 0
    return json.loads((data / out / "manifest.json").read_text())


def expected_labels(keys, maps, t):
    """Independent restatement of the single-threshold rule: strict '>' for foreground, first max wins."""
    maps = maps.astype(np.float32)
    return np.where(maps.max(0) > np.float32(t), keys[maps.argmax(0)], 0)


# ---------------------------------------------------------------- make_pseudo_labels


def test_make_pseudo_labels_threshold_mode_end_to_end(dataset, capsys):
    manifest = run_make(dataset, "pseudo", "--bg-threshold", "0.3", "--workers", "2")
    pixel_counts = np.zeros(256, np.int64)
    for image_id in IDS:
        path = dataset / "pseudo" / f"{image_id}.png"
        with Image.open(path) as image:
            assert image.mode == "P"
            labels = np.asarray(image)
        keys, maps = load_seeds(dataset / "seeds" / f"{image_id}.npz")
        assert np.array_equal(labels, expected_labels(keys, maps, 0.3))
        pixel_counts += np.bincount(labels.ravel(), minlength=256)
    assert sorted(p.name for p in (dataset / "pseudo").iterdir()) == sorted(
        [f"{i}.png" for i in IDS] + ["manifest.json"]
    )
    assert manifest["complete"] is True
    seeds = str((dataset / "seeds").resolve())
    assert manifest["settings"] == {"mode": "threshold", "bg_threshold": 0.3, "crf": None, "seeds": seeds}
    assert manifest["counts"] == {"images": 3, "written": 3, "existing": 0, "pixels": int(pixel_counts.sum())}
    fractions = {str(v): pixel_counts[v] / pixel_counts.sum() for v in np.flatnonzero(pixel_counts)}
    assert manifest["pixel_fractions"].keys() == fractions.keys()
    assert all(abs(manifest["pixel_fractions"][k] - fractions[k]) < 1e-12 for k in fractions)
    # The seeds reproduce the gt, so the PNGs score 100 mIoU with tools/eval_seg.py as they are.
    capsys.readouterr()
    args = [
        "--pred",
        str(dataset / "pseudo"),
        "--gt",
        str(dataset / "gt"),
        "--list",
        str(dataset / "train.txt"),
    ]
    eval_seg.main([*args, "--classes", str(dataset / "classes.txt"), "--no-progress", "--workers", "1"])
    out = capsys.readouterr().out
    assert "| 100.00 | 100.00 | 100.00 |" in out


def test_make_pseudo_labels_is_resumable(dataset):
    run_make(dataset, "pseudo", "--bg-threshold", "0.3", "--workers", "1")
    stats = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (dataset / "pseudo").glob("*.png")}
    manifest = run_make(dataset, "pseudo", "--bg-threshold", "0.3", "--workers", "1")
    assert {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (dataset / "pseudo").glob("*.png")
    } == stats
    assert manifest["counts"]["written"] == 0 and manifest["counts"]["existing"] == 3
    (dataset / "pseudo" / f"{IDS[1]}.png").unlink()
    manifest = run_make(dataset, "pseudo", "--bg-threshold", "0.3", "--workers", "1")
    assert manifest["counts"]["written"] == 1 and manifest["counts"]["existing"] == 2
    assert (dataset / "pseudo" / f"{IDS[1]}.png").is_file()


def test_make_pseudo_labels_two_threshold_mode(dataset):
    # Seeds with a middle band: 0.9 on the object, 0.4 on a ring of rows below it, 0.1 elsewhere.
    gt = ground_truth(2)
    keys, maps = seeds_from_gt(gt)
    maps[0, 25:28, 4:20] = 0.4
    save_seeds(dataset / "seeds" / f"{IDS[2]}.npz", keys, maps)
    # An IRN/mmseg-style list: path columns, and an id listed twice (labelled once).
    lines = [IDS[0], IDS[1], f"/JPEGImages/{IDS[2]}.jpg /SegmentationClassAug/{IDS[2]}.png", IDS[0]]
    (dataset / "paths.txt").write_text("\n".join(lines) + "\n")
    manifest = run_make(
        dataset, "two", "--fg-threshold", "0.5", "--bg-low", "0.2", "--list", str(dataset / "paths.txt")
    )
    assert manifest["counts"]["images"] == 3 and manifest["counts"]["written"] == 3
    labels = read_label_png(dataset / "two" / f"{IDS[2]}.png")
    expected = gt.copy()
    expected[25:28, 4:20] = 255
    assert np.array_equal(labels, expected)
    assert manifest["settings"] == {"mode": "two_thresholds", "fg_threshold": 0.5, "bg_low": 0.2, "crf": None,
                                    "seeds": str((dataset / "seeds").resolve())}  # fmt: skip
    assert manifest["pixel_fractions"]["255"] == pytest.approx(48 / (3 * 40 * 48))


@needs_crf
def test_make_pseudo_labels_with_crf(dataset):
    manifest = run_make(dataset, "crf", "--bg-threshold", "0.3", "--crf", "--workers", "1")
    assert manifest["settings"]["crf"] == {
        "gt_prob": 0.7,
        "gaussian_sxy": 3.0,
        "gaussian_compat": 3.0,
        "bilateral_sxy": 50.0,
        "bilateral_srgb": 5.0,
        "bilateral_compat": 10.0,
        "iterations": 10,
    }
    for index, image_id in enumerate(IDS):
        gt = ground_truth(index)
        labels = read_label_png(dataset / "crf" / f"{image_id}.png")
        valid = gt != 255
        assert (labels[valid] == gt[valid]).mean() > 0.99  # right labels on clean colour regions stay put


def test_make_pseudo_labels_script_runs_in_a_fresh_interpreter(dataset):
    command = [
        sys.executable,
        str(REPO / "tools" / "make_pseudo_labels.py"),
        "--seeds",
        str(dataset / "seeds"),
    ]
    command += ["--images", str(dataset / "images"), "--out", str(dataset / "sub"), "--bg-threshold", "0.5"]
    done = subprocess.run(
        [*command, "--workers", "2"], capture_output=True, text=True, cwd=dataset, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "3 images" in done.stdout and len(list((dataset / "sub").glob("*.png"))) == 3


def test_make_pseudo_labels_errors(dataset, tool_error):
    def fails(out, *extra):
        return tool_error(make(dataset, out, *extra))

    for bad in ("0", "1", "1.5"):
        assert "strictly between 0 and 1" in fails("e1", "--bg-threshold", bad)
    assert "must be below the foreground threshold" in fails("e1", "--fg-threshold", "0.2", "--bg-low", "0.3")
    assert not (dataset / "e1").exists()
    # A manifest from other settings in the same folder.
    run_make(dataset, "pseudo", "--bg-threshold", "0.3", "--workers", "1")
    message = fails("pseudo", "--bg-threshold", "0.4", "--workers", "1")
    assert "other settings" in message and "use a new folder" in message
    # A folder of PNGs made by something else.
    write_label_png(dataset / "foreign" / "x.png", np.zeros((2, 2), np.uint8))
    assert "no manifest.json" in fails("foreign", "--bg-threshold", "0.3")
    # An image missing for a seed: named.
    (dataset / "images" / f"{IDS[1]}.jpg").unlink()
    assert f"{dataset / 'images'}: no image for 1 of 3 seeds (first: {IDS[1]}" in fails(
        "e2", "--bg-threshold", "0.3"
    )
    # Listed ids without seeds: how many, and the first.
    (dataset / "list.txt").write_text(f"{IDS[0]}\nmissing_a\nmissing_b\n")
    assert "2 of 3 listed ids have no seed file (first: missing_a, missing_b)" in fails(
        "e3", "--bg-threshold", "0.3", "--list", str(dataset / "list.txt")
    )
    # A seed whose size differs from its image.
    save_seeds(dataset / "seeds" / f"{IDS[0]}.npz", [1], np.zeros((1, 10, 10)))
    (dataset / "list.txt").write_text(f"{IDS[0]}\n")
    message = fails("e4", "--bg-threshold", "0.3", "--list", str(dataset / "list.txt"))
    assert f"{IDS[0]}.npz: seed maps are 10x10 (HxW)" in message and "40x48" in message
    assert not (dataset / "e4" / f"{IDS[0]}.png").exists()
    # Seeds folder missing or empty.
    assert "seeds folder not found" in fails("e5", "--bg-threshold", "0.3", "--seeds", str(dataset / "nope"))
    (dataset / "empty").mkdir()
    assert "holds no <id>.npz files" in fails(
        "e5", "--bg-threshold", "0.3", "--seeds", str(dataset / "empty")
    )


# ---------------------------------------------------------------- eval_seeds


def run_eval(data: Path, *extra: str) -> int:
    argv = ["--seeds", str(data / "seeds"), "--gt", str(data / "gt"), "--list", str(data / "train.txt")]
    return eval_seeds.main([*argv, "--classes", str(data / "classes.txt"), "--no-progress", *extra])


def test_eval_seeds_finds_the_perfect_threshold(dataset, capsys):
    assert (
        run_eval(dataset, "--json", str(dataset / "out" / "sweep.json"), "--plot", str(dataset / "curve.png"))
        == 0
    )
    out = capsys.readouterr().out
    # Maps are 0.9 on each class and 0.1 elsewhere. t = 0.05 makes every pixel foreground; from t = 0.10
    # (a tie with 0.1 after float16 rounding: background) up to 0.85 the gt comes back exactly; from
    # 0.90 (a tie with 0.9) every pixel is background.
    data = json.loads((dataset / "out" / "sweep.json").read_text())
    assert data["thresholds"] == list(DEFAULT_THRESHOLDS) and len(data["curve"]) == 19
    assert data["best_threshold"] == 0.1 and data["best"]["mIoU"] == 100.0 and not data["best_at_edge"]
    mious = [row["mIoU"] for row in data["curve"]]
    assert mious[0] < 100.0 and mious[1:17] == [100.0] * 16 and max(mious[17:]) < 100.0
    assert [row["class"] for row in data["best"]["per_class"]] == ["background", "cat", "dog", "bird"]
    assert data["num_images"] == 3 and data["seeds"] == str((dataset / "seeds").resolve())
    assert "best background threshold 0.10: mIoU 100.00" in out
    with Image.open(dataset / "curve.png") as plot:
        assert plot.format == "PNG" and plot.size == (600, 400)
    assert (dataset / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_seeds_curve_matches_an_independent_count(dataset, capsys):
    """A noisy seed set: each threshold's mIoU equals eval_seg's score of the labels made at that t."""
    rng = np.random.default_rng(4)
    for index, image_id in enumerate(IDS):
        keys, maps = seeds_from_gt(ground_truth(index))
        maps = np.clip(maps + rng.normal(0, 0.25, maps.shape), 0, 1)
        save_seeds(dataset / "seeds" / f"{image_id}.npz", keys, maps)
    run_eval(dataset, "--thresholds", "0.2:0.4:0.1", "--json", str(dataset / "sweep.json"), "--workers", "2")
    curve = json.loads((dataset / "sweep.json").read_text())["curve"]
    assert [row["threshold"] for row in curve] == [0.2, 0.3, 0.4]
    for row in curve:
        out = f"t{row['threshold']}"
        run_make(dataset, out, "--bg-threshold", str(row["threshold"]), "--workers", "1")
        args = [
            "--pred",
            str(dataset / out),
            "--gt",
            str(dataset / "gt"),
            "--list",
            str(dataset / "train.txt"),
        ]
        args += ["--classes", str(dataset / "classes.txt"), "--no-progress", "--workers", "1"]
        eval_seg.main([*args, "--json", str(dataset / f"{out}.json")])
        assert json.loads((dataset / f"{out}.json").read_text())["mIoU"] == pytest.approx(
            row["mIoU"], abs=1e-9
        )
    capsys.readouterr()


def test_threshold_ranges_include_their_end():
    assert parse_thresholds("0.05:0.95:0.05") == DEFAULT_THRESHOLDS
    assert DEFAULT_THRESHOLDS[0] == 0.05 and DEFAULT_THRESHOLDS[-1] == 0.95 and len(DEFAULT_THRESHOLDS) == 19
    assert parse_thresholds("0.2:0.44:0.02")[-1] == 0.44
    assert parse_thresholds("0.2:0.45:0.1") == (0.2, 0.3, 0.4)
    assert parse_thresholds("0.25,0.3") == (0.25, 0.3)


def test_eval_seeds_errors(dataset, tool_error):
    def fails(*extra):
        return tool_error(run_eval(dataset, *extra))

    assert "strictly between 0 and 1" in fails("--thresholds", "0:0.5:0.1")
    assert "strictly between 0 and 1" in fails("--thresholds", "0.5,1.0")
    assert "STEP > 0" in fails("--thresholds", "0.1:0.5:0")
    save_seeds(dataset / "seeds" / f"{IDS[2]}.npz", [4], np.zeros((1, 40, 48)))
    message = fails()
    assert f"{IDS[2]}.npz" in message and "keys must be 1-based class indices in 1..3, got [4]" in message
    save_seeds(dataset / "seeds" / f"{IDS[2]}.npz", [1], np.zeros((1, 20, 48)))
    message = fails()
    assert f"{IDS[2]}.npz: seed maps are 20x48 (HxW) but ground truth" in message and "40x48" in message
    (dataset / "seeds" / f"{IDS[0]}.npz").unlink()
    assert f"1 of 3 listed ids have no seed file (first: {IDS[0]})" in fails()


# ---------------------------------------------------------------- real VOC sample


def test_real_voc_sample_seeds_from_gt(tmp_path, capsys):
    voc = SHARED / "voc-sample"
    if not voc.is_dir():
        pytest.skip(f"{voc} is absent")
    ids = [
        line.split()[0] for name in ("train.txt", "val.txt") for line in (voc / name).read_text().splitlines()
    ]
    for image_id in ids:
        gt = read_label_png(voc / "SegmentationClass" / f"{image_id}.png")
        save_seeds(tmp_path / "seeds" / f"{image_id}.npz", *seeds_from_gt(gt))
    (tmp_path / "all.txt").write_text("\n".join(ids) + "\n")
    common = ["--list", str(tmp_path / "all.txt"), "--no-progress"]
    eval_seeds.main(
        [
            "--seeds",
            str(tmp_path / "seeds"),
            "--gt",
            str(voc / "SegmentationClass"),
            "--classes",
            "voc",
            *common,
        ]
    )
    assert "best background threshold 0.10: mIoU 100.00" in capsys.readouterr().out
    argv = [
        "--seeds",
        str(tmp_path / "seeds"),
        "--images",
        str(voc / "JPEGImages"),
        "--out",
        str(tmp_path / "p"),
    ]
    extra = ["--crf"] if HAS_CRF else []
    make_pseudo_labels.main([*argv, "--fg-threshold", "0.5", "--bg-low", "0.15", *extra, *common])
    for image_id in ids:
        gt = read_label_png(voc / "SegmentationClass" / f"{image_id}.png")
        labels = read_label_png(tmp_path / "p" / f"{image_id}.png")
        valid = (gt != 255) & (labels != 255)
        assert labels.shape == gt.shape and (labels[valid] == gt[valid]).mean() > 0.95


# ---------------------------------------------------------------- issue 14: non-finite seeds, resume checks


def write_nan_seed(path: Path) -> None:
    """A seed file as a buggy localizer would write it (save_seeds refuses NaN, so np.savez directly)."""
    maps = np.full((1, 40, 48), np.nan, np.float16)
    with open(path, "wb") as handle:
        np.savez_compressed(handle, keys=np.array([1]), maps=maps)


def test_nan_seed_maps_are_refused_naming_the_seed_file(dataset, tool_error):
    """Finding 5: NaN maps used to become all-background labels, exit 0."""
    bad = dataset / "seeds" / f"{IDS[1]}.npz"
    write_nan_seed(bad)
    tool_error(run_eval(dataset), f"^error: {bad}: maps hold NaN or infinite values")
    tool_error(make(dataset, "pseudo", "--bg-threshold", "0.3", "--workers", "1"),
               f"^error: {bad}: maps hold NaN or infinite values")  # fmt: skip
    assert not (dataset / "pseudo" / f"{IDS[1]}.png").exists()


def test_resume_redoes_label_pngs_that_are_cut_off_empty_or_of_another_size(dataset):
    """Finding 6: a rerun keeps only whole PNGs of the image's size."""
    run_make(dataset, "pseudo", "--bg-threshold", "0.3", "--workers", "1")
    out = dataset / "pseudo"
    first = {image_id: read_label_png(out / f"{image_id}.png") for image_id in IDS}
    write_label_png(out / f"{IDS[0]}.png", np.zeros((10, 10), np.uint8))  # whole, but another size
    (out / f"{IDS[1]}.png").write_bytes(b"")
    cut = out / f"{IDS[2]}.png"
    cut.write_bytes(cut.read_bytes()[:60])
    manifest = run_make(dataset, "pseudo", "--bg-threshold", "0.3", "--workers", "1")
    assert manifest["counts"]["written"] == 3 and manifest["counts"]["existing"] == 0
    for image_id in IDS:
        np.testing.assert_array_equal(read_label_png(out / f"{image_id}.png"), first[image_id])


def test_eval_seeds_refuses_class_names_of_another_dataset(dataset, tool_error):
    """Issue 14, finding 11: --classes voc on a 4-class dataset used to print VOC names for its classes."""
    write_class_names(dataset / "class_names.txt", ("background", "cat", "dog", "bird"))
    tool_error(run_eval(dataset, "--classes", "voc"),
               f"^error: {dataset / 'class_names.txt'}: the dataset has 4 classes .* but --classes voc gives 21")  # fmt: skip


def test_make_pseudo_labels_threshold_from_a_sweep_of_other_images(dataset, tool_error):
    """Images without masks (synthetic ones) labelled at the best threshold a sweep found on real images."""
    sweep = dataset / "sweep.json"
    sweep.write_text(
        json.dumps({"seeds": "/elsewhere/seeds", "best_threshold": 0.35, "best": {"mIoU": 50.0}})
    )
    manifest = run_make(dataset, "pseudo", "--threshold-from", str(sweep), "--workers", "1")
    assert manifest["settings"]["bg_threshold"] == 0.35
    assert manifest["settings"]["seeds"] == str((dataset / "seeds").resolve())  # --seeds, not the sweep's
    keys, maps = load_seeds(dataset / "seeds" / f"{IDS[0]}.npz")
    labels = np.asarray(Image.open(dataset / "pseudo" / f"{IDS[0]}.png"))
    assert np.array_equal(labels, expected_labels(keys, maps, 0.35))
    argv = ["--images", str(dataset / "images"), "--out", str(dataset / "p2"), "--no-progress"]
    tool_error(make_pseudo_labels.main([*argv, "--threshold-from", str(sweep)]), "give --seeds")
    tool_error(make(dataset, "p3", "--threshold-from", str(dataset / "none.json")), "sweep file not found")
