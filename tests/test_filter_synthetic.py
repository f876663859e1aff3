"""The classifier filter of synthetic folders: the keep rule, the kept list and manifest records, the
tool with a tiny random classifier, and folders whose manifest disagrees with their images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from wsss.cli.filter_synthetic import main
from wsss.data.dataset import ImageLabelDataset
from wsss.engine.config import load_config
from wsss.registry import MODELS
from wsss.synth.dataset import generate_images, plan_images, write_index
from wsss.synth.filter import FilterRule, decide, filter_folder, read_synthetic_folder
from wsss.synth.prompt_file import PromptEntry

REPO = Path(__file__).resolve().parents[1]
CAM_CONFIG = REPO / "configs" / "bas" / "cam_shapes.py"
CLASSES = ("background", "boat", "train", "bird")
PROMPTS = [("a boat on water", ("boat",)), ("a train on rails", ("train",)), ("a boat and a bird", ("boat", "bird")),
           ("a lake with no objects", ()), ("a bird", ("bird",))]  # fmt: skip


class NoiseGenerator:
    """A stand-in text-to-image generator: seeded noise images, 32 px."""

    name, resolution, default_steps, default_guidance = "noise", 32, 1, 0.0

    def sample(self, prompts, seeds, steps, guidance):
        return np.stack(
            [np.random.default_rng(s).integers(0, 256, (32, 32, 3), dtype=np.uint8) for s in seeds]
        )


def make_folder(out: Path) -> Path:
    entries = [PromptEntry(text, classes, None, i + 1) for i, (text, classes) in enumerate(PROMPTS)]
    labels = [sorted(CLASSES.index(c) for c in classes) for _, classes in PROMPTS]
    plan = plan_images(entries, 0, labels)
    settings = {"generator": "noise", "source": "test", "steps": 1, "guidance": 0.0, "resolution": 32}
    generate_images(NoiseGenerator(), plan, out, 1, 0.0, batch_size=2, progress=False)
    write_index(out, plan, settings, 1, 0.0, CLASSES)
    return out


def fixed_scorer(table: dict[str, list[float]]):
    """Scores by image file name, from a hand-made table."""
    return lambda paths: np.array([table[Path(p).stem] for p in paths], dtype=np.float32)


def test_decide_rule():
    rule = FilterRule(0.5)
    assert decide({"boat": 0.6, "train": 0.99}, ["boat"], rule) == (True, "kept")
    assert decide({"boat": 0.4, "train": 0.1}, ["boat"], rule)[0] is False
    strict = FilterRule(0.5, reject=0.9)
    keep, reason = decide({"boat": 0.6, "train": 0.95}, ["boat"], strict)
    assert not keep and "train 0.95" in reason
    # background-only prompts: kept when no class reaches reject (threshold without reject)
    assert decide({"boat": 0.7, "train": 0.1}, [], rule)[0] is False
    assert decide({"boat": 0.7, "train": 0.1}, [], strict)[0] is True
    with pytest.raises(ValueError, match="threshold"):
        FilterRule(1.5)


def test_hand_made_scores_give_the_kept_list_and_manifest_records(tmp_path):
    out = make_folder(tmp_path / "synth")
    folder = read_synthetic_folder(out)
    assert folder.prompted["synth_000002"] == ["boat", "bird"] and folder.prompted["synth_000003"] == []
    #            boat  train bird
    table = {"synth_000000": [0.9, 0.1, 0.2],  # boat: kept
             "synth_000001": [0.1, 0.3, 0.1],  # train too low: filtered
             "synth_000002": [0.8, 0.95, 0.7],  # boat + bird kept, but train confident -> rejected with reject 0.9
             "synth_000003": [0.2, 0.1, 0.3],  # background, nothing confident: kept
             "synth_000004": [0.1, 0.1, 0.5]}  # bird at exactly the threshold: kept  # fmt: skip
    totals = filter_folder(
        folder, fixed_scorer(table), FilterRule(0.5, reject=0.9), {"config": "hand"}, batch_size=2
    )
    kept = ["synth_000000", "synth_000003", "synth_000004"]
    assert (out / "ImageSets/Segmentation/train.txt").read_text().split() == kept
    assert totals["kept"] == 3 and totals["filtered"] == 2 and totals["total"] == 5
    assert totals["per_class"]["boat"] == {"prompted": 2, "kept": 1}
    assert totals["background_only"] == {"prompted": 1, "kept": 1}
    manifest = json.loads((out / "manifest.json").read_text())
    record = manifest["images"]["synth_000002"]["filter"]
    assert record["scores"] == {"boat": 0.8, "train": 0.95, "bird": 0.7} and record["kept"] is False
    assert "train 0.95" in record["reason"]
    assert manifest["filter"]["threshold"] == 0.5 and manifest["filter"]["reject_unprompted"] == 0.9
    assert manifest["filter"]["kept"] == 3 and manifest["filter"]["config"] == "hand"
    # The dataset reads the kept images with their labels.
    dataset = ImageLabelDataset(out, split="train", with_mask=False)
    assert dataset.img_ids == kept and dataset.cls_labels == [[1], [], [3]]
    # Filtering again starts from every generated image, not the kept ones.
    filter_folder(read_synthetic_folder(out), fixed_scorer(table), FilterRule(0.05), {})
    kept = (out / "ImageSets/Segmentation/train.txt").read_text().split()
    assert len(kept) == 4  # all but the background image, where a class now counts as confident


def test_tool_with_a_tiny_random_classifier(tmp_path, capsys):
    out = make_folder(tmp_path / "synth")
    options = {"model.backbone.name": "test_resnet"}
    cfg = load_config(CAM_CONFIG, data_root=out, cfg_options=options)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope("wsss"):
        model = MODELS.build(cfg.model).eval()
    checkpoint = tmp_path / "cam.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {}}, checkpoint)
    args = [str(CAM_CONFIG), str(checkpoint), "--synthetic", str(out), "--device", "cpu", "--no-progress",
            "--batch-size", "2", "--cfg-options", "model.backbone.name=test_resnet"]  # fmt: skip
    assert main([*args, "--threshold", "0.01"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    scores = {i: r["filter"]["scores"] for i, r in manifest["images"].items()}
    assert set(scores["synth_000000"]) == {"boat", "train", "bird"}
    assert "kept" in capsys.readouterr().out
    # A threshold between the scores keeps exactly the images whose prompted classes reach it.
    prompted = [s[c] for (i, s), (_, classes) in zip(sorted(scores.items()), PROMPTS) for c in classes]
    threshold = float(np.median(prompted))
    assert main([*args, "--threshold", str(threshold), "--reject-unprompted", "0.99"]) in (0, 2)
    kept = (out / "ImageSets/Segmentation/train.txt").read_text().split()
    expected = [i for (i, s), (_, classes) in zip(sorted(scores.items()), PROMPTS)
                if all(s[c] >= threshold for c in classes) and all(v < 0.99 for c, v in s.items() if c not in classes)]  # fmt: skip
    assert kept == expected
    # The scores are the classifier's on the images at its validation size.
    from wsss.data.image_io import read_image
    from wsss.data.transforms import AlbuPipeline

    image = AlbuPipeline([dict(type="ResizeShorter", size=96)])(
        read_image(out / "JPEGImages/synth_000000.jpg"), None
    )["image"]
    batch = model.data_preprocessor(
        {"inputs": torch.from_numpy(image.transpose(2, 0, 1).copy())[None], "data_samples": []}
    )["inputs"]
    with torch.no_grad():
        direct = torch.sigmoid(model.logits(batch))[0].numpy()
    assert np.allclose(direct, [scores["synth_000000"][c] for c in ("boat", "train", "bird")], atol=1e-3)


def test_bad_folders_are_one_line_errors(tmp_path, tool_error):
    checkpoint = tmp_path / "unused.pth"
    checkpoint.write_bytes(b"")
    args = [str(CAM_CONFIG), str(checkpoint), "--device", "cpu", "--no-progress"]
    tool_error(
        main([*args, "--synthetic", str(tmp_path / "nowhere")]), r"nowhere: synthetic folder not found"
    )
    out = make_folder(tmp_path / "synth")
    tool_error(main([*args, "--synthetic", str(out), "--threshold", "2"]), r"--threshold.*\(0, 1\)")
    # An image of the manifest removed, one added behind its back, one made from another prompt.
    (out / "JPEGImages" / "synth_000001.jpg").unlink()
    tool_error(
        main([*args, "--synthetic", str(out)]), r"records images with no file in JPEGImages/: synth_000001;"
    )
    out = make_folder(tmp_path / "synth2")
    (out / "JPEGImages" / "stray.jpg").write_bytes((out / "JPEGImages" / "synth_000000.jpg").read_bytes())
    tool_error(main([*args, "--synthetic", str(out)]), r"images the manifest does not record: stray;")
    out = make_folder(tmp_path / "synth3")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["images"]["synth_000002"]["prompt"] = "a train"
    manifest["images"]["synth_000004"]["seed"] = 77
    (out / "manifest.json").write_text(json.dumps(manifest))
    tool_error(
        main([*args, "--synthetic", str(out)]),
        r"another prompt or seed than the manifest records: synth_000002, synth_000004;",
    )
    out = make_folder(tmp_path / "synth4")
    labels = json.loads((out / "cls_labels.json").read_text())
    labels["synth_000000"] = [2]
    (out / "cls_labels.json").write_text(json.dumps(labels))
    tool_error(
        main([*args, "--synthetic", str(out)]), r"cls_labels.json: the classes of synth_000000 disagree"
    )
