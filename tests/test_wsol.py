"""WSOL boxes and metrics on hand-made maps."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from wsss.data.dataset import wsss_collate
from wsss.evaluation.metrics import WSOLMetric
from wsss.evaluation.wsol import WSOLEvaluator, box_from_map, box_iou, minmax_normalize
from wsss.nn.preprocessor import SegDataPreprocessor
from wsss.registry import METRICS


def test_box_from_largest_component():
    cam = np.zeros((20, 30), np.float32)
    cam[2:5, 3:6] = 1.0  # 9 pixels
    cam[10:18, 12:25] = 0.8  # 104 pixels, the largest
    assert box_from_map(minmax_normalize(cam), 0.5) == (12, 10, 24, 17)
    assert box_from_map(minmax_normalize(cam), 0.9) == (3, 2, 5, 4)
    assert box_from_map(np.zeros((5, 5)), 0.5) is None


def test_box_iou_inclusive_pixels():
    # 10x10 box and a 10x5 box sharing 50 pixels: IoU 50 / 100.
    assert box_iou((0, 0, 9, 9), np.array([[0, 0, 9, 4]])) == pytest.approx(0.5)
    assert box_iou((0, 0, 9, 9), np.array([[20, 20, 30, 30], [0, 0, 9, 9]])) == pytest.approx(1.0)
    assert box_iou(None, np.array([[0, 0, 1, 1]])) == 0.0


def test_evaluator_metrics_and_sweep():
    evaluator = WSOLEvaluator(thresholds=[0.2, 0.5, 0.8], threshold=0.5)
    ramp = np.zeros((10, 10), np.float32)
    ramp[0:10, 0:5] = 0.6  # at t=0.5 the box is the left half; at t=0.8 only the peak
    ramp[0:2, 0:2] = 1.0
    gt = np.array([[0, 0, 4, 9]])
    evaluator.update(ramp, gt, gt_label=3, top5=[3, 1, 2, 4, 5])  # located, right class
    evaluator.update(ramp, gt, gt_label=7, top5=[1, 7, 2, 4, 5])  # located, class only in top-5
    evaluator.update(np.zeros((10, 10)), gt, gt_label=2, top5=[2, 1, 3, 4, 5])  # constant map: no box
    result = evaluator.compute()
    assert result.gt_known_loc == pytest.approx(200 / 3)
    assert result.top1_loc == pytest.approx(100 / 3)
    assert result.top5_loc == pytest.approx(200 / 3)
    assert result.top1_cls == pytest.approx(200 / 3)
    # IoU per threshold for the ramp images: t=0.2/0.5 -> 1.0, t=0.8 -> 4/50; the zero map never hits.
    assert result.max_box_acc_per_iou == {
        0.3: pytest.approx(200 / 3),
        0.5: pytest.approx(200 / 3),
        0.7: pytest.approx(200 / 3),
    }
    assert result.best_threshold_per_iou[0.5] == 0.2
    assert result.max_box_acc_v2 == pytest.approx(200 / 3)
    with pytest.raises(ValueError):
        WSOLEvaluator().compute()


def make_cub(root):
    from PIL import Image

    (root / "images" / "001.Bird").mkdir(parents=True)
    rows = []
    for i in range(1, 5):
        Image.new("RGB", (40, 30), (i * 40, 0, 0)).save(root / "images" / "001.Bird" / f"b{i}.jpg")
        rows.append(i)
    (root / "images.txt").write_text("".join(f"{i} 001.Bird/b{i}.jpg\n" for i in rows))
    (root / "image_class_labels.txt").write_text("".join(f"{i} {1 + i % 2}\n" for i in rows))
    (root / "train_test_split.txt").write_text("".join(f"{i} {int(i <= 3)}\n" for i in rows))
    (root / "bounding_boxes.txt").write_text("".join(f"{i} 2.0 3.0 10.0 20.0\n" for i in rows))
    (root / "classes.txt").write_text("1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")


def test_cub_dataset_reads_layout(tmp_path):
    from wsss.data.cub import CUBDataset

    make_cub(tmp_path)
    train, test = CUBDataset(tmp_path, "train"), CUBDataset(tmp_path, "test")
    assert len(train) == 3 and len(test) == 1 and train.class_names[1] == "002.Laysan_Albatross"
    item = test[0]
    assert item["inputs"].shape == (3, 30, 40)
    assert item["data_samples"]["gt_label"] == 0  # image 4 has class 1 (1-based)
    assert item["data_samples"]["gt_bboxes"].tolist() == [[2.0, 3.0, 11.0, 22.0]]
    (tmp_path / "bounding_boxes.txt").unlink()
    with pytest.raises(FileNotFoundError, match="bounding_boxes.txt: CUB file not found"):
        CUBDataset(tmp_path, "train")


def predicted(gt_box, scores, gt_label=1, size=(30, 40), extra_boxes=()):
    """A predicted sample as BASWSOL.predict returns it: a map at the original size, bright on ``gt_box``."""
    x1, y1, x2, y2 = gt_box
    loc_map = torch.zeros(size)
    loc_map[y1 : y2 + 1, x1 : x2 + 1] = 1.0
    boxes = torch.tensor([gt_box, *extra_boxes], dtype=torch.float32)
    return {"loc_map": loc_map, "cls_score": torch.tensor(scores), "gt_label": gt_label,
            "gt_bboxes": boxes, "ori_shape": size}  # fmt: skip


def test_metric_on_hand_made_predictions():
    metric = METRICS.build(dict(type="WSOLMetric"))
    assert isinstance(metric, WSOLMetric) and metric.threshold == 0.1
    # The map lights exactly the ground-truth box and class 1 scores highest: located, right class.
    metric.process({}, [predicted((5, 4, 20, 17), [0.1, 0.6, 0.2, 0.05, 0.03, 0.02])])
    result = metric.evaluate(1)
    assert result == {key: pytest.approx(100.0) for key in
                      ("wsol/top1_loc", "wsol/top5_loc", "wsol/gt_known_loc", "wsol/top1_cls", "wsol/max_box_acc_v2")}  # fmt: skip
    # Same box (an image with two ground-truth boxes), but class 0 wins: GT-known, not Top-1 Loc.
    metric.process({}, [predicted((5, 4, 20, 17), [0.6, 0.3, 0.1], extra_boxes=[(30, 20, 39, 29)])])
    result = metric.evaluate(1)
    assert result["wsol/top1_loc"] == 0.0 and result["wsol/top1_cls"] == 0.0
    assert result["wsol/gt_known_loc"] == 100.0 and result["wsol/top5_loc"] == 100.0
    assert result["wsol/max_box_acc_v2"] == pytest.approx(100.0)


def test_metric_keeps_small_per_image_results_and_sums_them_like_the_evaluator():
    rng = np.random.default_rng(0)
    metric = WSOLMetric(threshold=0.3)
    evaluator = WSOLEvaluator(threshold=0.3)
    for index in range(4):
        size = (20 + 7 * index, 50 - 5 * index)
        sample = {"loc_map": torch.from_numpy(rng.random(size, dtype=np.float32)),
                  "cls_score": torch.from_numpy(rng.random(6)), "gt_label": index,
                  "gt_bboxes": torch.tensor([[2.0, 3.0, 12.0, 15.0]] * (1 + index % 2)), "ori_shape": size}  # fmt: skip
        metric.process({}, [sample])
        top5 = np.argsort(-sample["cls_score"].numpy())[:5].tolist()
        evaluator.update(sample["loc_map"].numpy(), sample["gt_bboxes"].numpy(), index, top5)
    # mmengine pickles the results to gather them across ranks: no maps, a few hundred bytes each.
    gathered = pickle.loads(pickle.dumps(metric.results))
    assert max(len(pickle.dumps(image)) for image in gathered) < 2000
    expected = evaluator.compute()
    assert metric.compute_metrics(gathered) == {
        "top1_loc": expected.top1_loc,
        "top5_loc": expected.top5_loc,
        "gt_known_loc": expected.gt_known_loc,
        "top1_cls": expected.top1_cls,
        "max_box_acc_v2": expected.max_box_acc_v2,
    }
    with pytest.raises(ValueError, match="threshold must lie in"):
        WSOLMetric(threshold=1.0)


def test_batches_keep_a_box_array_per_image(tmp_path):
    from wsss.data.cub import CUBDataset

    make_cub(tmp_path)
    with (tmp_path / "bounding_boxes.txt").open("a") as table:
        table.write("2 20.0 10.0 5.0 5.0\n")  # image 2 has two boxes
    dataset = CUBDataset(tmp_path, "train", pipeline=[dict(type="Resize", height=32, width=32)])
    batch = SegDataPreprocessor()(wsss_collate([dataset[0], dataset[1]]))
    assert batch["inputs"].shape == (2, 3, 32, 32)
    assert [tuple(s["gt_bboxes"].shape) for s in batch["data_samples"]] == [(1, 4), (2, 4)]
    assert batch["data_samples"][1]["ori_shape"] == (30, 40)
