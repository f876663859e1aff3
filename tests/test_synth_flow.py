"""Our own rectified-flow generators: the loss and path, the Euler sampler, training, loading, sampling
and the evaluation tool."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wsss.cli import eval_generator, generate_synthetic, make_shapes
from wsss.cli import train as train_tool
from wsss.data.captioned import CaptionedImageDataset
from wsss.data.transforms import AlbuPipeline
from wsss.engine.config import load_config
from wsss.engine.inference import build_model
from wsss.synth.flow.generator import load_flow_generator
from wsss.synth.flow.model import flow_loss, interpolate
from wsss.synth.flow.sampler import euler
from wsss.synth.generator import TextToImageGenerator
from wsss.synth.quality import classify_images, label_fidelity, multi_hot

REPO = Path(__file__).resolve().parents[1]


def test_rectified_flow_path_and_loss_match_hand_values():
    x0, x1 = torch.zeros(2, 1, 1, 2), torch.tensor([[[[2.0, 4.0]]], [[[1.0, -1.0]]]])
    t = torch.tensor([0.25, 1.0])
    assert torch.allclose(interpolate(x0, x1, t), torch.tensor([[[[0.5, 1.0]]], [[[1.0, -1.0]]]]))
    # v = x1 - x0 exactly gives 0; v = 0 gives the mean of (x1 - x0)^2 = (4 + 16 + 1 + 1) / 4.
    assert float(flow_loss(x1 - x0, x0, x1)) == 0.0
    assert math.isclose(float(flow_loss(torch.zeros_like(x1), x0, x1)), 22 / 4)


def test_euler_integrates_constant_and_linear_fields_exactly():
    x0 = torch.tensor([1.0, -2.0])
    assert torch.allclose(euler(lambda x, t: torch.full_like(x, 3.0), x0, steps=1).x1, x0 + 3.0)
    # dx/dt = x with N Euler steps: x0 (1 + 1/N)^N; dx/dt = t: exactly sum of i/N^2 = (N - 1) / (2N).
    assert torch.allclose(euler(lambda x, t: x, x0, steps=4).x1, x0 * 1.25**4)
    path = euler(lambda x, t: torch.ones_like(x) * t, x0, steps=4, keep_path=True)
    assert torch.allclose(path.x1, x0 + 3 / 8) and path.times == [0.0, 0.25, 0.5, 0.75]
    with pytest.raises(ValueError, match="at least 1 step"):
        euler(lambda x, t: x, x0, steps=0)


@pytest.fixture(scope="module")
def trained_flow(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A 1-RF model trained 2 steps on 12 shapes images at 32 px: (config, work dir, data root)."""
    tmp = tmp_path_factory.mktemp("flow")
    data = tmp / "shapes"
    assert (
        make_shapes.main(
            ["--out", str(data), "--n-train", "12", "--n-val", "2", "--size", "32", "--workers", "1"]
        )
        == 0
    )
    config = tmp / "rf_tiny.py"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/synth/rf1_shapes.py')!r}]\n"
        "model = dict(text_encoder=dict(dim=16, layers=1, heads=2), unet=dict(channels=(8, 16, 16)))\n"
        "train_dataloader = dict(batch_size=4)\n"
    )
    work = tmp / "work"
    assert train_tool.main([str(config), "--data-root", str(data), "--work-dir", str(work), "--cfg-options",
                            "train_cfg.max_iters=2", "default_hooks.checkpoint.interval=2"]) == 0  # fmt: skip
    return config, work, data


def test_a_trained_flow_model_samples_deterministically_and_refuses_unknown_words(trained_flow):
    config, work, _ = trained_flow
    generator = load_flow_generator(config, work)
    assert isinstance(generator, TextToImageGenerator) and generator.resolution == 32
    images = generator.sample(["a red boat on water", "a train"], [3, 4], steps=2, guidance=1.0)
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    again = generator.sample(["a train", "a red boat on water"], [4, 3], steps=2, guidance=1.0)
    assert np.array_equal(images[0], again[1]) and not np.array_equal(images[0], images[1])
    with pytest.raises(ValueError, match=r"unknown words \['zeppelin'\]"):
        generator.sample(["a zeppelin"], [0], steps=1, guidance=1.0)


def test_generate_synthetic_from_our_own_generator(trained_flow, tmp_path, tool_error):
    config, work, data = trained_flow
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a boat on water\na train on rails\n")
    out = tmp_path / "synth"
    args = ["--config", str(config), "--checkpoint", str(work), "--prompts", str(prompts), "--classes",
            str(data / "class_names.txt"), "--out", str(out), "--steps", "2", "--no-progress"]  # fmt: skip
    assert generate_synthetic.main(args) == 0
    labels = json.loads((out / "cls_labels.json").read_text())
    names = (data / "class_names.txt").read_text().split()
    assert sorted(names[i] for ids in labels.values() for i in ids) == ["boat", "train"]
    assert len(list((out / "JPEGImages").glob("*.jpg"))) == 2
    tool_error(generate_synthetic.main([*args[:-2], "0", "--no-progress"]), "--steps")


def test_generate_synthetic_drops_words_the_model_does_not_know(trained_flow, tmp_path, tool_error):
    config, work, data = trained_flow
    prompts = tmp_path / "planned.jsonl"
    prompts.write_text('{"prompt": "a photo of a red boat on the water", "classes": ["boat"], "contexts": ["water"], "seed": 5}\n'
                       '{"prompt": "a photo of a zeppelin and a train", "classes": ["train"]}\n')  # fmt: skip
    out = tmp_path / "synth"
    args = ["--config", str(config), "--checkpoint", str(work), "--prompts", str(prompts), "--classes",
            str(data / "class_names.txt"), "--out", str(out), "--steps", "1", "--no-progress"]  # fmt: skip
    tool_error(generate_synthetic.main(args), r"unknown words \[.*'photo'")
    # --cfg-options reach the model: another UNet width does not fit the checkpoint.
    tool_error(generate_synthetic.main([*args, "--cfg-options", "model.unet.channels=(4,8,8)"]), "shape")
    out = tmp_path / "synth_known"  # the first run's folder records settings without the flag
    args[args.index("--out") + 1] = str(out)
    assert generate_synthetic.main([*args, "--drop-unknown-words"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["unknown_words"] == "dropped"
    generator = load_flow_generator(config, work)
    read = generator.vocabulary.keep_known("a photo of a red boat on the water")[0]
    assert manifest["images"]["synth_000000"]["prompt"] == read and "photo" not in read and "boat" in read
    second = manifest["images"]["synth_000001"]["prompt"]
    assert "zeppelin" not in second and second.endswith("a train")
    assert generator.vocabulary.keep_known("two trains") == (
        "train",
        ["two"],
    )  # a plural read as its singular
    assert json.loads((out / "cls_labels.json").read_text())["synth_000001"] == [names_index(data, "train")]
    expected = generator.sample([read], [5], steps=1, guidance=generator.default_guidance)[0]
    written = np.asarray(Image.open(out / "JPEGImages" / "synth_000000.jpg"), dtype=float)
    assert np.abs(written - expected).mean() < 6
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a photo of a zeppelin", "classes": ["boat"]}\n')
    args[args.index("--prompts") + 1] = str(bad)
    tool_error(generate_synthetic.main([*args, "--drop-unknown-words"]),
               r"bad.jsonl:1: 'a photo of a zeppelin' names no class the generator knows")  # fmt: skip


def names_index(data: Path, name: str) -> int:
    return (data / "class_names.txt").read_text().split().index(name)


def test_eval_generator_judges_its_images_with_the_real_data_classifier(trained_flow, tmp_path, tool_error):
    config, work, data = trained_flow
    cam_config = REPO / "configs" / "bas" / "cam_shapes.py"
    tiny = {"model.backbone.name": "test_resnet"}
    torch.manual_seed(0)
    classifier = build_model(load_config(cam_config, data_root=data, cfg_options=tiny)).eval()
    checkpoint = tmp_path / "cam.pth"
    torch.save({"state_dict": classifier.state_dict(), "meta": {}}, checkpoint)
    out = tmp_path / "eval"
    args = [str(config), str(work), "--data-root", str(data), "--split", "train", "--out", str(out), "--count", "8",
            "--steps", "2", "--grid-seeds", "1", "--seed", "7"]  # fmt: skip
    judged = [
        "--classifier",
        str(cam_config),
        str(checkpoint),
        "--classifier-cfg-options",
        "model.backbone.name=test_resnet",
    ]
    assert eval_generator.main([*args, *judged]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["sets"]["classes"]["straightness"] >= 0 and (out / "grid_captions.png").is_file()
    quality = metrics["quality"]
    assert set(quality) == {"real_images", "split", "classes", "captions"} and quality["real_images"] == 8
    assert set(quality["captions"]) == {"1", "2"}
    # The figures are those of the classifier on the very images the generator makes for those prompts.
    dataset = CaptionedImageDataset(data, split="train", random_caption=False)
    generator = load_flow_generator(config, work)
    images = generator.sample(
        [t[0] for t in dataset.captions[:8]], list(range(7, 15)), 2, generator.default_guidance
    )
    pipeline = AlbuPipeline([dict(type="ResizeShorter", size=96)])
    scores, _ = classify_images(classifier, list(images), pipeline, embed=True)
    expected = label_fidelity(scores, multi_hot(dataset.cls_labels[:8], dataset.num_classes - 1))
    row = quality["captions"]["2"]
    assert row["mAP"] == pytest.approx(expected["mAP"], abs=1e-3)
    assert row["exact_match"] == pytest.approx(expected["exact_match"])
    assert np.isfinite(row["kid"]) and 0 <= row["precision"] <= 100 and 0 <= row["recall"] <= 100
    tool_error(eval_generator.main([*args, *judged, "--threshold", "1.5"]), "--threshold")
