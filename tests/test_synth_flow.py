"""Our own rectified-flow generators: the loss and path, the Euler sampler, training, loading, sampling
and the evaluation tool."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import load_checkpoint
from PIL import Image

from wsss.cli import eval_generator, generate_synthetic, make_reflow_pairs, make_shapes
from wsss.cli import train as train_tool
from wsss.data.captioned import CaptionedImageDataset
from wsss.data.transforms import AlbuPipeline
from wsss.engine.config import load_config
from wsss.engine.inference import build_model
from wsss.synth.flow.generator import load_flow_generator
from wsss.synth.flow.model import flow_loss, interpolate
from wsss.synth.flow.pairs import read_pairs
from wsss.synth.flow.perceptual import ClassifierPerceptualDistance, feature_distance
from wsss.synth.flow.sampler import euler
from wsss.synth.flow.students import class_groups, student_routes
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
    config = tiny_config(tmp, "rf1_shapes.py")
    work = tmp / "work"
    train_tiny(config, data, work)
    return config, work, data


def tiny_config(folder: Path, shipped: str) -> Path:
    """``configs/synth/<shipped>`` with a tiny text encoder and UNet and batches of 4, written into ``folder``."""
    config = folder / f"tiny_{shipped}"
    config.write_text(
        f"_base_ = [{str(REPO / 'configs/synth' / shipped)!r}]\n"
        "model = dict(text_encoder=dict(dim=16, layers=1, heads=2), unet=dict(channels=(8, 16, 16)))\n"
        "train_dataloader = dict(batch_size=4)\n"
    )
    return config


def train_tiny(config: Path, data: Path, work: Path, *extra: str) -> None:
    """Two training steps of ``config`` on ``data`` into ``work`` with tools/train.py."""
    assert train_tool.main([str(config), "--data-root", str(data), "--work-dir", str(work), *extra, "--cfg-options",
                            "train_cfg.max_iters=2", "default_hooks.checkpoint.interval=2"]) == 0  # fmt: skip


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


CAM_CONFIG = REPO / "configs" / "bas" / "cam_shapes.py"


def tiny_classifier(data: Path, checkpoint: Path) -> tuple[torch.nn.Module, Path]:
    """A random CAM classifier of ``data`` (timm's test_resnet backbone), saved as an mmengine checkpoint."""
    torch.manual_seed(0)
    cfg = load_config(CAM_CONFIG, data_root=data, cfg_options={"model.backbone.name": "test_resnet"})
    classifier = build_model(cfg).eval()
    torch.save({"state_dict": classifier.state_dict(), "meta": {}}, checkpoint)
    return classifier, checkpoint


def names_index(data: Path, name: str) -> int:
    return (data / "class_names.txt").read_text().split().index(name)


def test_eval_generator_judges_its_images_with_the_real_data_classifier(trained_flow, tmp_path, tool_error):
    config, work, data = trained_flow
    classifier, checkpoint = tiny_classifier(data, tmp_path / "cam.pth")
    out = tmp_path / "eval"
    args = [str(config), str(work), "--data-root", str(data), "--split", "train", "--out", str(out), "--count", "8",
            "--steps", "2", "--grid-seeds", "1", "--seed", "7"]  # fmt: skip
    judged = [
        "--classifier",
        str(CAM_CONFIG),
        str(checkpoint),
        "--classifier-cfg-options",
        "model.backbone.name=test_resnet",
    ]
    tool_error(eval_generator.main([*args, "--contexts"]), "give --classifier")
    assert eval_generator.main([*args, *judged, "--contexts", "--context-seeds", "1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    contexts = metrics["quality"].pop("contexts")
    assert set(contexts) == {"probe", "1", "2"} and contexts["probe"]["fitted_on"] == 12
    assert (
        set(contexts["2"]) == {"water", "rails"} and contexts["2"]["water"]["images"] == 12
    )  # 6 classes x 2
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


def test_reflow_pairs_are_the_teachers_ode_samples_resume_and_train_reflow_distillation_and_msd(
    trained_flow, tmp_path, tool_error
):
    config, work, data = trained_flow
    pairs = tmp_path / "pairs"
    args = [str(config), str(work), "--data-root", str(data), "--out", str(pairs), "--count", "6",
            "--shard-size", "4", "--steps", "2", "--no-progress"]  # fmt: skip
    assert make_reflow_pairs.main(args) == 0
    settings, read = read_pairs(pairs)
    assert settings["count"] == 6 and read["x1"].shape == (6, 3, 32, 32) and len(read["captions"]) == 6
    teacher = load_flow_generator(config, work)
    x0 = teacher.noise(read["seeds"].tolist())
    assert torch.allclose(torch.from_numpy(read["noise"]), x0)
    expected = teacher.integrate(x0, [str(c) for c in read["captions"]], 2, teacher.default_guidance).x1
    assert torch.allclose(torch.from_numpy(read["x1"]), expected, atol=1e-5)
    shard = pairs / "pairs_00001.npz"
    stamp = shard.stat().st_mtime_ns
    assert make_reflow_pairs.main(args) == 0 and shard.stat().st_mtime_ns == stamp  # whole shards kept
    tool_error(make_reflow_pairs.main([*args[:-2], "3", "--no-progress"]), "steps differ")
    # 2-RF from the 1-RF weights on the pairs, then its one-step distillation and a 2-student MSD from it.
    rf2 = tmp_path / "rf2"
    train_tiny(tiny_config(tmp_path, "rf2_shapes.py"), pairs, rf2, "--load-from", str(work))
    distilled = tmp_path / "distill"
    train_tiny(tiny_config(tmp_path, "distill_shapes.py"), pairs, distilled, "--load-from", str(rf2))
    msd_config = tiny_config(tmp_path, "msd_shapes.py")
    msd = tmp_path / "msd"
    train_tiny(msd_config, pairs, msd, "--load-from", str(rf2))
    generator = load_flow_generator(msd_config, msd)
    assert generator.model.groups() == [("boat", "train", "aeroplane"), ("bird", "bottle", "person")]
    images = generator.sample(["a boat", "a bird"], [1, 2], steps=1, guidance=1.0)
    assert images.shape == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="sampled at guidance 1"):
        generator.sample(["a boat"], [1], steps=1, guidance=2.0)  # guidance needs the empty prompt
    with pytest.raises(ValueError, match="'' names no class"):
        generator.model.encode(["a boat", ""])
    # resuming a multi-student run from the single-network 2-RF checkpoint is refused (only --load-from)
    tool_error(train_tool.main([str(msd_config), "--data-root", str(pairs), "--work-dir", str(tmp_path / "r"),
                                "--resume", str(rf2 / "iter_2.pth")]), "lacks")  # fmt: skip


def test_a_multi_student_model_starts_as_its_teacher_and_routes_each_prompt_to_its_student(trained_flow):
    config, work, _ = trained_flow
    teacher = load_flow_generator(config, work).model
    cfg = load_config(config, cfg_options={"model.num_students": 2, "model.cond_dropout": 0.0})
    students = build_model(cfg).eval()
    load_checkpoint(students, str(work / "iter_2.pth"), logger="silent")  # mmengine's loader, as --load-from
    with torch.no_grad():
        assert all(
            torch.equal(p, q)
            for p, q in zip(students.unet.students[1].parameters(), teacher.unet.parameters())
        )
    students.load_state_dict(teacher.state_dict())  # torch's loader copies one network into each student too
    prompts = ["a boat on water", "a bird and a train", "a person"]  # students 0, 0 (train first), 1
    assert student_routes(students.vocabulary, students.groups(), prompts).tolist() == [0, 0, 1]
    x, t = torch.randn(3, 3, 32, 32), torch.tensor([0.0, 0.5, 0.9])
    with torch.no_grad():
        before = teacher.velocity(x, t, teacher.encode(prompts))
        assert torch.allclose(students.velocity(x, t, students.encode(prompts)), before, atol=1e-6)
        for p in students.unet.students[1].parameters():
            p.add_(0.1)
        after = students.velocity(x, t, students.encode(prompts))
    assert torch.allclose(after[:2], before[:2], atol=1e-6) and not torch.allclose(after[2], before[2])
    # a batch that no prompt routes to student 1: it still gets a (zero) gradient, as DDP needs
    students.train()
    loss = students.velocity(x[:2], t[:2], students.encode(prompts[:2])).pow(2).mean()
    loss.backward()
    idle = [p.grad for p in students.unet.students[1].parameters()]
    assert all(g is not None and not g.any() for g in idle)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():  # mixed precision keeps its dtype
        assert students.velocity(x, t, students.encode(prompts)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="cond_dropout=0"):
        build_model(load_config(config, cfg_options={"model.num_students": 2}))


def test_student_groups_are_consecutive_blocks_or_a_checked_partition():
    classes = ("boat", "train", "aeroplane", "bird", "bottle", "person")
    assert class_groups(classes, 4) == [("boat", "train"), ("aeroplane", "bird"), ("bottle",), ("person",)]
    assert class_groups(classes, 1) == [classes]
    groups = [["bird", "boat"], ["train", "aeroplane", "bottle", "person"]]
    assert class_groups(classes, 2, groups) == [("bird", "boat"), ("train", "aeroplane", "bottle", "person")]
    with pytest.raises(ValueError, match=r"repeated \['boat'\], unknown \['zeppelin'\], missing \['bird'\]"):
        class_groups(classes, 2, [["boat", "zeppelin"], ["boat", "train", "aeroplane", "bottle", "person"]])
    with pytest.raises(ValueError, match="one per student"):
        class_groups(classes, 3, groups)
    with pytest.raises(ValueError, match="at most one student per class"):
        class_groups(classes, 7)


def test_feature_distance_is_lpips_on_unit_length_features():
    a = torch.tensor([1.0, 0.0]).view(1, 2, 1, 1)
    b = torch.tensor([0.0, 3.0]).view(1, 2, 1, 1)
    # unit vectors (1, 0) and (0, 1): squared distance 2 in one stage, 0 in the other (same up to scale).
    assert torch.allclose(feature_distance([a, 5 * a], [b, a]), torch.tensor([1.0]))
    maps = torch.randn(3, 4, 2, 2)
    assert torch.allclose(feature_distance([maps], [2 * maps]), torch.zeros(3), atol=1e-6)


def test_the_perceptual_loss_is_the_classifier_distance_of_the_predicted_end_point(trained_flow, tmp_path):
    config, work, data = trained_flow
    classifier, checkpoint = tiny_classifier(data, tmp_path / "cam.pth")
    tiny = {"model.backbone.name": "test_resnet"}
    perceptual = {"config": str(CAM_CONFIG), "checkpoint": str(checkpoint), "size": 96, "weight": 0.5,
                  "cfg_options": tiny}  # fmt: skip
    options = {"model.perceptual": perceptual, "model.time_sampling": "zero", "model.cond_dropout": 0.0,
               "model.num_students": 1}  # fmt: skip
    model = build_model(load_config(config, cfg_options=options))
    model.load_state_dict(load_flow_generator(config, work).model.state_dict())
    for p in model.unet.out.parameters():  # a velocity that is not yet zero everywhere
        torch.nn.init.normal_(p, std=0.1)
    x1, noise = torch.rand(2, 3, 32, 32) * 2 - 1, torch.randn(2, 3, 32, 32)
    samples = [{"caption": "a boat", "noise": noise[0]}, {"caption": "a train", "noise": noise[1]}]
    losses = model.loss(x1, samples)
    with torch.no_grad():
        end = noise + model.velocity(noise, torch.zeros(2), model.encode(["a boat", "a train"]))
    distance = ClassifierPerceptualDistance(CAM_CONFIG, checkpoint, 7, 96, tiny)
    perceptual_loss = float(losses["loss_perceptual"].detach())
    assert (
        perceptual_loss == pytest.approx(0.5 * float(distance(end, x1).mean()), rel=1e-4)
        and perceptual_loss > 0
    )
    sum(losses.values()).backward()
    assert model.unet.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.perceptual_distance().classifier(x1.device).parameters())
    assert not any("backbone" in key for key in model.state_dict())  # the classifier is not saved
    # at t ~ U(0, 1) the end point is x_t + (1 - t) v
    model.time_sampling = "uniform"
    torch.manual_seed(3)
    uniform = float(model.loss(x1, samples)["loss_perceptual"].detach())
    torch.manual_seed(3)
    t = torch.rand(2)
    x_t = interpolate(noise, x1, t)
    with torch.no_grad():
        end = x_t + (1 - t).view(-1, 1, 1, 1) * model.velocity(x_t, t, model.encode(["a boat", "a train"]))
    assert uniform == pytest.approx(0.5 * float(distance(end, x1).mean()), rel=1e-4)
    # a missing setting is named when the model is built
    options["model.perceptual"] = {"config": str(CAM_CONFIG), "size": 96}
    with pytest.raises(ValueError, match="lacks checkpoint"):
        build_model(load_config(config, cfg_options=options))
