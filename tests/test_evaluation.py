"""Tests of the evaluation package: confusion matrices, scores, seed sweeps, eval_seg and the metric."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsss.cli import eval_seg
from wsss.data.label_io import read_label_fast, read_label_png, write_label_png
from wsss.evaluation.confusion import ConfusionMatrix, confusion_matrix
from wsss.evaluation.metrics import SegIoUMetric
from wsss.evaluation.seeds import ThresholdSweep, format_curve, sweep_background_threshold
from wsss.evaluation.tables import format_table, load_json, save_json
from wsss.registry import METRICS

REPO = Path(__file__).resolve().parents[1]
VOC_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "voc-sample"

# 3 classes; one ignored pixel (255) and one out-of-range prediction (7 -> background).
GT = np.array([[0, 1, 255], [2, 1, 0]])
PRED = np.array([[0, 2, 1], [2, 7, 1]])
# Pairs (gt, pred): (0,0) (1,2) (2,2) (1,0) (0,1).
EXPECTED = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 1]])


def naive_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int) -> np.ndarray:
    """Reference: count every (gt, pred) pair with boolean masks."""
    pred = np.where((pred >= 0) & (pred < num_classes), pred, 0)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for g in range(num_classes):
        for p in range(num_classes):
            matrix[g, p] = np.count_nonzero((gt == g) & (pred == p))
    return matrix


def blob_labels(rng: np.random.Generator, shape: tuple[int, int], num_classes: int) -> np.ndarray:
    """Labels made of rectangles, so that they have the long runs real label maps have."""
    labels = np.zeros(shape, dtype=np.uint8)
    for _ in range(6):
        y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        labels[y : y + rng.integers(5, 40), x : x + rng.integers(5, 40)] = rng.integers(0, num_classes)
    return labels


# ---------------------------------------------------------------- confusion matrix and scores


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.astype(np.uint8),
        lambda a: a.astype(np.int64),
        lambda a: torch.from_numpy(a.astype(np.int64)),
        lambda a: torch.from_numpy(a.astype(np.uint8)),
    ],
    ids=["uint8", "int64", "torch-int64", "torch-uint8"],
)
def test_hand_computed_matrix(convert) -> None:
    assert np.array_equal(confusion_matrix(convert(PRED), convert(GT), 3), EXPECTED)


def test_negative_prediction_counts_as_background() -> None:
    matrix = confusion_matrix(np.array([[-1, 2]]), np.array([[1, 1]]), 3)
    assert matrix.tolist() == [[0, 0, 0], [1, 0, 1], [0, 0, 0]]


def test_hand_computed_scores() -> None:
    counts = ConfusionMatrix(3)
    counts.update(PRED, GT)
    result = counts.compute()
    # T = (2, 2, 1), P = (2, 1, 2), TP = (1, 0, 1), union = (3, 3, 2).
    assert np.allclose(result.iou, [100 / 3, 0.0, 50.0], rtol=0, atol=1e-12)
    assert np.allclose(result.acc, [50.0, 0.0, 100.0], rtol=0, atol=1e-12)
    assert np.allclose(result.fp_ratio, [100 / 3, 100 / 3, 50.0], rtol=0, atol=1e-12)
    assert np.allclose(result.fn_ratio, [100 / 3, 200 / 3, 0.0], rtol=0, atol=1e-12)
    assert result.aAcc == pytest.approx(40.0, abs=1e-12)
    assert result.mIoU == pytest.approx((100 / 3 + 0 + 50) / 3, abs=1e-12)
    assert result.mAcc == pytest.approx(50.0, abs=1e-12)
    assert not result.absent.any()


def test_absent_class_left_out_of_means() -> None:
    counts = ConfusionMatrix(4)
    counts.update(PRED, GT)
    result = counts.compute()
    assert result.absent.tolist() == [False, False, False, True]
    assert all(math.isnan(v[3]) for v in (result.iou, result.acc, result.fp_ratio, result.fn_ratio))
    assert result.mIoU == pytest.approx((100 / 3 + 0 + 50) / 3, abs=1e-12)
    assert result.mAcc == pytest.approx(50.0, abs=1e-12)
    table = format_table(result, ["background", "cat", "dog", "cow"])
    assert "| cow        | absent | absent |" in table
    assert "| background |  33.33 |  50.00 |" in table
    assert "| 40.00 | 27.78 | 50.00 |" in table


def test_class_predicted_but_not_in_ground_truth() -> None:
    result = scores_of(np.array([[0, 1]]), np.array([[0, 0]]), 2)
    assert result.iou[1] == 0.0 and math.isnan(result.acc[1]) and not result.absent[1]
    assert result.mIoU == pytest.approx(25.0) and result.mAcc == pytest.approx(50.0)
    assert "no gt" in format_table(result, ["background", "cat"])


def scores_of(pred: np.ndarray, gt: np.ndarray, num_classes: int):
    counts = ConfusionMatrix(num_classes)
    counts.update(pred, gt)
    return counts.compute()


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_ground_truth_out_of_range_is_named(dtype) -> None:
    gt = np.array([[0, 9, 255], [7, 9, 1]], dtype=dtype)
    with pytest.raises(ValueError, match=r"\[7, 9\]"):
        confusion_matrix(np.zeros_like(gt), gt, 3)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8), 3)
    with pytest.raises(TypeError, match="integer"):
        confusion_matrix(np.zeros((2, 2), np.float32), np.zeros((2, 2), np.uint8), 3)
    with pytest.raises(ValueError, match=r"\[-1\]"):
        confusion_matrix(np.zeros((1, 2), np.int64), np.array([[-1, 0]]), 3)


@pytest.mark.parametrize("structured", [True, False], ids=["long-runs", "noise"])
def test_matches_naive_counting(structured: bool) -> None:
    rng = np.random.default_rng(1)
    num_classes = 21
    if structured:
        gt, pred = blob_labels(rng, (96, 96), num_classes), blob_labels(rng, (96, 96), 25)
        gt[rng.random(gt.shape) < 0.01] = 255
    else:
        gt = rng.choice(np.r_[np.arange(num_classes), 255], size=(96, 96)).astype(np.uint8)
        pred = rng.integers(0, 30, size=(96, 96)).astype(np.uint8)
    assert np.array_equal(confusion_matrix(pred, gt, num_classes), naive_matrix(pred, gt, num_classes))


def test_matches_torchmetrics_on_present_classes() -> None:
    from torchmetrics.classification import MulticlassJaccardIndex

    rng = np.random.default_rng(2)
    num_classes = 6
    gt = rng.integers(0, 4, size=(3, 40, 48))  # classes 4 and 5 never in the ground truth ...
    pred = rng.integers(0, 5, size=(3, 40, 48))  # ... and 5 never predicted either
    gt[rng.random(gt.shape) < 0.15] = 255
    counts = ConfusionMatrix(num_classes)
    counts.update(pred, gt)
    result = counts.compute()
    metric = MulticlassJaccardIndex(num_classes=num_classes, ignore_index=255, average=None)
    reference = metric(torch.from_numpy(pred), torch.from_numpy(gt)).double().numpy() * 100
    present = ~result.absent
    assert present.tolist() == [True] * 5 + [False]
    assert np.allclose(result.iou[present], reference[present], rtol=0, atol=1e-4)


def test_streaming_and_merge_equal_one_update() -> None:
    rng = np.random.default_rng(3)
    pairs = [(blob_labels(rng, (32, 40), 5), blob_labels(rng, (32, 40), 5)) for _ in range(4)]
    for _, gt in pairs:
        gt[rng.random(gt.shape) < 0.05] = 255
    streamed = ConfusionMatrix(5)
    for pred, gt in pairs:
        streamed.update(pred, gt)
    whole = ConfusionMatrix(5)
    whole.update(np.concatenate([p for p, _ in pairs]), np.concatenate([g for _, g in pairs]))
    assert np.array_equal(streamed.matrix, whole.matrix)

    first, second = ConfusionMatrix(5), ConfusionMatrix(5)
    for pred, gt in pairs[:2]:
        first.update(pred, gt)
    for pred, gt in pairs[2:]:
        second.update(pred, gt)
    added = first + second
    assert np.array_equal(added.matrix, whole.matrix)
    assert np.array_equal(first.matrix, naive_matrix(*np.concatenate(pairs[:2], axis=1), 5))  # + leaves it
    assert first.merge(second) is first and np.array_equal(first.matrix, whole.matrix)
    with pytest.raises(ValueError, match="merge"):
        first.merge(ConfusionMatrix(4))


def test_json_round_trip(tmp_path: Path) -> None:
    counts = ConfusionMatrix(4)
    counts.update(PRED, GT)
    result = counts.compute()
    names = ["background", "cat", "dog", "cow"]
    path = tmp_path / "out" / "result.json"
    save_json(result, path, names)
    # Strict JSON: a NaN / Infinity constant in the file fails the parse.
    data = json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"non-JSON constant {name}"))
    assert data["per_class"][3] == {
        "class": "cow",
        "IoU": None,
        "Acc": None,
        "FP_ratio": None,
        "FN_ratio": None,
        "absent": True,
    }
    assert data["mIoU"] == result.mIoU and data["confusion_matrix"][1] == [1, 0, 1, 0]
    loaded, loaded_names = load_json(path)
    assert loaded_names == tuple(names)
    assert np.array_equal(loaded.matrix, result.matrix)
    assert (loaded.aAcc, loaded.mIoU, loaded.mAcc) == (result.aAcc, result.mIoU, result.mAcc)
    for field in ("iou", "acc", "fp_ratio", "fn_ratio", "absent"):
        assert np.array_equal(getattr(loaded, field), getattr(result, field), equal_nan=field != "absent")
    assert list(tmp_path.joinpath("out").iterdir()) == [path]  # no temporary file left behind


# ---------------------------------------------------------------- PNG reading


def handmade_png(rows: np.ndarray, filters: list[int]) -> bytes:
    """A greyscale 8-bit PNG whose scanlines carry the given filter bytes (rows already filtered)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    height, width = rows.shape
    raw = b"".join(bytes([f]) + row.tobytes() for f, row in zip(filters, rows))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_fast_reader_matches_pillow(tmp_path: Path) -> None:
    labels = blob_labels(np.random.default_rng(4), (33, 47), 21)
    labels[0, :5] = 255
    write_label_png(tmp_path / "a.png", labels)
    assert np.array_equal(read_label_fast(tmp_path / "a.png"), labels)
    # A row stored with the "Up" filter (byte 2) holds differences; the fallback must undo them.
    values = np.array([[1, 2, 3], [4, 4, 9]], dtype=np.uint8)
    stored = np.stack([values[0], values[1] - values[0]])
    (tmp_path / "up.png").write_bytes(handmade_png(stored, [0, 2]))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "up.png")), values)
    assert np.array_equal(read_label_fast(tmp_path / "up.png"), values)
    (tmp_path / "plain.png").write_bytes(handmade_png(values, [0, 0]))
    assert np.array_equal(read_label_fast(tmp_path / "plain.png"), values)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(ValueError, match="rgb.png"):
        read_label_fast(tmp_path / "rgb.png")


# ---------------------------------------------------------------- seed threshold sweep


def brute_force_labels(keys: np.ndarray, maps: np.ndarray, threshold: float) -> np.ndarray:
    plane = np.full((1, *maps.shape[1:]), threshold, dtype=maps.dtype)
    winner = np.argmax(np.concatenate([plane, maps]), axis=0)
    return np.concatenate([[0], keys])[winner]


def test_seed_sweep_matches_brute_force() -> None:
    rng = np.random.default_rng(5)
    num_classes = 6
    thresholds = [0.3, 0.05, 0.15, 0.5, 0.25]  # unsorted on purpose
    samples = []
    for k in (2, 1, 0, 3):
        keys = np.sort(rng.choice(np.arange(1, num_classes), size=k, replace=False))
        # Multiples of 0.05 in float32, so scores tie with the thresholds exactly.
        maps = (rng.integers(0, 21, size=(k, 24, 30)) * 0.05).astype(np.float32)
        gt = rng.integers(0, num_classes, size=(24, 30))
        gt[rng.random(gt.shape) < 0.1] = 255
        samples.append((keys, maps, gt))
    result = sweep_background_threshold(samples, num_classes, thresholds)

    expected = []
    for t in thresholds:
        counts = ConfusionMatrix(num_classes)
        for keys, maps, gt in samples:
            counts.update(brute_force_labels(keys, maps, t), gt)
        expected.append(counts.matrix)
    for got, want in zip(result.results, expected):
        assert np.array_equal(got.matrix, want)
    mious = [ConfusionMatrix(num_classes, m).compute().mIoU for m in expected]
    assert result.curve == dict(zip(thresholds, mious))
    assert result.best_threshold == thresholds[int(np.argmax(mious))]
    assert result.best.mIoU == max(mious)
    assert format_curve(result).count("*") == 1

    first, second = ThresholdSweep(num_classes, thresholds), ThresholdSweep(num_classes, thresholds)
    for keys, maps, gt in samples[:2]:
        first.update(keys, maps, gt)
    for keys, maps, gt in samples[2:]:
        second.update(torch.from_numpy(keys), torch.from_numpy(maps), torch.from_numpy(gt))
    assert np.array_equal(first.merge(second).matrices(), np.stack(expected))


def test_seed_sweep_input_errors() -> None:
    sweep = ThresholdSweep(3, [0.2])
    maps = np.zeros((1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="1-based"):
        sweep.update(np.array([3]), maps, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="resize"):
        sweep.update(np.array([1]), maps, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match=r"\[4\]"):
        sweep.update(np.array([1]), maps, np.full((4, 4), 4, np.uint8))
    with pytest.raises(ValueError, match="no labelled pixel"):
        sweep.compute()


# ---------------------------------------------------------------- eval_seg tool


def write_folders(tmp_path: Path, count: int = 5) -> tuple[Path, Path, Path, np.ndarray]:
    rng = np.random.default_rng(6)
    expected = ConfusionMatrix(4)
    ids = [f"2007_{i:06d}" for i in range(count)]
    for image_id in ids:
        gt = blob_labels(rng, (40, 56), 3)
        gt[:2] = 255
        pred = blob_labels(rng, (40, 56), 4)
        write_label_png(tmp_path / "gt" / f"{image_id}.png", gt)
        write_label_png(tmp_path / "pred" / f"{image_id}.png", pred)
        expected.update(pred, gt)
    id_list = tmp_path / "val.txt"
    id_list.write_text("".join(f"{i}\n" for i in ids) + "\n")
    (tmp_path / "classes.txt").write_text("background\ncat\ndog\ncow\n")
    return tmp_path / "pred", tmp_path / "gt", id_list, expected.matrix


@pytest.mark.parametrize("workers", ["1", "2"])
def test_eval_seg_matches_direct_computation(tmp_path: Path, capsys, workers: str) -> None:
    pred, gt, id_list, expected = write_folders(tmp_path)
    out = tmp_path / "res" / "result.json"
    args = [
        "--pred",
        str(pred),
        "--gt",
        str(gt),
        "--list",
        str(id_list),
        "--classes",
        str(tmp_path / "classes.txt"),
    ]
    assert eval_seg.main([*args, "--json", str(out), "--workers", workers, "--no-progress", "--fp-fn"]) == 0
    loaded, names = load_json(out)
    assert names == ("background", "cat", "dog", "cow")
    assert np.array_equal(loaded.matrix, expected)
    assert loaded.mIoU == ConfusionMatrix(4, expected).compute().mIoU
    printed = capsys.readouterr().out
    assert format_table(ConfusionMatrix(4, expected).compute(), names, show_errors=True) in printed


def test_eval_seg_classes_from_config(tmp_path: Path, capsys) -> None:
    pred, gt, id_list, expected = write_folders(tmp_path, count=2)
    config = tmp_path / "cfg.py"
    config.write_text("test_dataloader = dict(dataset=dict(type='X', classes=['bg', 'a', 'b', 'c']))\n")
    args = ["--pred", str(pred), "--gt", str(gt), "--list", str(id_list), "--classes", str(config)]
    assert eval_seg.main([*args, "--workers", "1", "--no-progress"]) == 0
    assert "| c " in capsys.readouterr().out


def test_eval_seg_errors(tool_error, tmp_path: Path) -> None:
    pred, gt, id_list, _ = write_folders(tmp_path)
    base = ["--pred", str(pred), "--gt", str(gt), "--classes", str(tmp_path / "classes.txt"), "--no-progress"]

    (pred / "2007_000001.png").unlink()
    (pred / "2007_000003.png").unlink()
    tool_error(
        eval_seg.main([*base, "--list", str(id_list)]),
        r"2 of 5 prediction PNGs are missing .*2007_000001, 2007_000003",
    )

    write_label_png(pred / "2007_000001.png", np.zeros((40, 56), np.uint8))
    write_label_png(pred / "2007_000003.png", np.zeros((41, 56), np.uint8))
    tool_error(
        eval_seg.main([*base, "--list", str(id_list), "--workers", "2"]),
        r"2007_000003\.png: prediction is 41x56 .* is 40x56",
    )

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    tool_error(eval_seg.main([*base, "--list", str(empty)]), "empty.txt: split list is empty")
    tool_error(eval_seg.main([*base, "--list", str(tmp_path / "nope.txt")]), "nope.txt: split list not found")


def test_eval_seg_script_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    pred, gt, id_list, _ = write_folders(tmp_path, count=2)
    (pred / "2007_000000.png").unlink()
    command = [sys.executable, str(REPO / "tools" / "eval_seg.py"), "--pred", str(pred), "--gt", str(gt)]
    command += ["--list", str(id_list), "--classes", "voc"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {pred}: 1 of 2 prediction PNGs are missing")


# ---------------------------------------------------------------- mmengine metric


def fake_batches(rng: np.random.Generator) -> list[list[dict]]:
    batches = []
    for _ in range(3):
        batch = []
        for _ in range(2):
            gt = torch.from_numpy(blob_labels(rng, (24, 32), 3).astype(np.int64))
            gt[0] = 255
            batch.append({"pred_seg": torch.from_numpy(blob_labels(rng, (24, 32), 3)), "gt_seg": gt})
        batches.append(batch)
    return batches


def test_metric_process_and_compute() -> None:
    batches = fake_batches(np.random.default_rng(7))
    expected = ConfusionMatrix(3)
    for batch in batches:
        for sample in batch:
            expected.update(sample["pred_seg"], sample["gt_seg"])
    metric = METRICS.build(dict(type="SegIoUMetric", class_names=["background", "cat", "dog"]))
    assert isinstance(metric, SegIoUMetric)
    for batch in batches:
        metric.process({}, batch)
    assert len(metric.results) == 3 and all(m.shape == (3, 3) for m in metric.results)
    metrics = metric.evaluate(size=6)
    want = expected.compute()
    assert metrics == {"aAcc": want.aAcc, "mIoU": want.mIoU, "mAcc": want.mAcc}


def test_metric_takes_class_names_from_dataset_meta() -> None:
    batches = fake_batches(np.random.default_rng(8))
    metric = SegIoUMetric()
    with pytest.raises(ValueError, match="class names"):
        metric.process({}, batches[0])
    metric.dataset_meta = {"classes": ("background", "cat", "dog")}
    metric.process({}, batches[0])
    expected = ConfusionMatrix(3)
    for sample in batches[0]:
        expected.update(sample["pred_seg"], sample["gt_seg"])
    assert metric.compute_metrics(metric.results)["mIoU"] == expected.compute().mIoU


# ---------------------------------------------------------------- real VOC labels


def test_voc_ground_truth_against_itself() -> None:
    folder = VOC_SAMPLE / "SegmentationClass"
    if not folder.is_dir():
        pytest.skip("shared VOC sample not available")
    counts = ConfusionMatrix(21)
    for path in sorted(folder.glob("*.png")):
        labels = read_label_png(path)
        assert np.array_equal(read_label_fast(path), labels)
        assert np.count_nonzero(labels == 255) > 0
        counts.update(labels, labels)
    result = counts.compute()
    present = [0, 1, 15]  # background, aeroplane, person
    assert np.flatnonzero(~result.absent).tolist() == present
    assert result.mIoU == 100.0 and result.aAcc == 100.0 and result.mAcc == 100.0
    assert np.all(result.iou[present] == 100.0)
    assert np.all(np.isnan(np.delete(result.iou, present)))


def test_eval_seg_context_shares_count_context_pixels_labelled_as_their_class(tmp_path, capsys, tool_error):
    pred, gt, context = tmp_path / "pred", tmp_path / "gt", tmp_path / "ContextMasks"
    classes = ["background", "boat", "train"]
    # Context 1 is water (boat), 2 rails (train). Image a: 4 water px, 3 called boat; 2 rails px, 0 train.
    labels = {"a": ([[1, 1, 1, 0], [0, 0, 2, 2]], [[1, 1, 1, 1], [2, 2, 0, 0]]),
              "b": ([[1, 0, 0, 0], [0, 0, 0, 0]], [[1, 1, 0, 0], [0, 0, 0, 0]])}  # fmt: skip
    for image_id, (label, region) in labels.items():
        write_label_png(pred / f"{image_id}.png", np.array(label, np.uint8))
        write_label_png(gt / f"{image_id}.png", np.array(label, np.uint8))
        write_label_png(context / f"{image_id}.png", np.array(region, np.uint8))
    (context / "contexts.json").write_text(json.dumps({"contexts": [
        {"value": 1, "name": "water", "class": "boat"}, {"value": 2, "name": "rails", "class": "train"}]}))  # fmt: skip
    split = tmp_path / "ids.txt"
    split.write_text("a\nb\n")
    classes_file = tmp_path / "classes.txt"
    classes_file.write_text("\n".join(classes) + "\n")
    # a: water 4 px (3 boat) + b: water 2 px (1 boat) -> 4/6; rails: 2 px, 0 train -> 0.
    args = ["--pred", str(pred), "--gt", str(gt), "--list", str(split), "--classes", str(classes_file),
            "--no-progress", "--workers", "1"]  # fmt: skip
    assert eval_seg.main([*args, "--context", str(context), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert (
        "water labelled boat: 66.67% of 6 pixels" in out and "rails labelled train: 0.00% of 2 pixels" in out
    )
    shares = json.loads((tmp_path / "r.json").read_text())["context_share"]
    assert shares["water"] == {"class": "boat", "pixels": 6, "labelled_as_class": 4, "share": 4 / 6}
    (context / "contexts.json").write_text(
        json.dumps({"contexts": [{"value": 1, "name": "w", "class": "cow"}]})
    )
    tool_error(eval_seg.main([*args, "--context", str(context)]), "contexts.json: needs")
