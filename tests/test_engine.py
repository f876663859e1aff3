"""Training engine: safe checkpoint loading, tools/train.py (resume, load_from, data root, DDP, errors), CAM, mAP."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import EPOCH_SCHEDULE
from mmengine.logging import HistoryBuffer
from test_make_seeds import save_random_model
from torchmetrics.classification import MultilabelAveragePrecision

from wsss.cli import make_seeds
from wsss.cli import train as train_tool
from wsss.engine.checkpoint import checkpoint_weights, install_safe_checkpoint_loader, load_from_local_safely
from wsss.engine.config import load_config
from wsss.engine.launch import TORCHRUN_VARIABLES, join_torchrun_group
from wsss.engine.runner import WSSSRunner
from wsss.engine.training import build_train_config, check_start, choose_start
from wsss.evaluation.classification import average_precision
from wsss.evaluation.metrics import MultiLabelMAP
from wsss.localize.cam import CAM
from wsss.registry import DATASETS, MODELS

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "train.py"
CAM_SHAPES = REPO / "configs" / "bas" / "cam_shapes.py"
CAM_VOC = REPO / "configs" / "bas" / "cam_r50_voc.py"


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """cam_shapes with the test_resnet backbone, no augmentation, no workers, and a fixed 4-epoch schedule
    (by epochs, as the VOC recipes train)."""
    path = tmp_path / "cam_tiny.py"
    path.write_text(
        f"_base_ = [{str(CAM_SHAPES)!r}]\n"
        'model = dict(backbone=dict(name="test_resnet"))\n'
        "train_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(pipeline=[]))\n"
        "val_dataloader = dict(batch_size=2, num_workers=0)\n"
        'param_scheduler = [dict(type="PolyLR", power=0.9, eta_min=0.0, by_epoch=True, '
        "convert_to_iter_based=True, end=4)]\n"
        "default_hooks = dict(logger=dict(interval=1), checkpoint=dict(by_epoch=True, interval=1, max_keep_ckpts=-1, save_best=None))\n"
        + EPOCH_SCHEDULE,
        encoding="utf-8",
    )
    return path


def train(config: Path, data_root: Path, work_dir: Path, *extra: str, max_epochs: int = 4) -> int:
    """Run tools/train.py in this process (seed 3); a unique experiment name keeps mmengine's loggers apart."""
    name = f"{work_dir.name}_{max_epochs}_{len(extra)}"
    return train_tool.main([str(config), "--data-root", str(data_root), "--work-dir", str(work_dir), "--seed", "3",
                            *extra, "--cfg-options", f"train_cfg.max_epochs={max_epochs}", f"experiment_name={name}"])  # fmt: skip


def model_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_from_local_safely(str(path), map_location="cpu")["state_dict"]


# --- safe checkpoint loading -------------------------------------------------------------------


class RunsShellCommand:
    """Unpickling this object runs a shell command (the classic malicious-pickle payload)."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class LooksUpAttribute:
    """Unpickling this object calls ``getattr(owner, name)``, the first step of any attribute-walk exploit."""

    def __init__(self, owner: type, name: str):
        self.owner, self.name = owner, name

    def __reduce__(self):
        return getattr, (self.owner, self.name)


def test_safe_loader_refuses_code_execution(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}, "payload": RunsShellCommand(f"touch {marker}")}, path)
    with pytest.raises(pickle.UnpicklingError, match="evil.pth: refused to load"):
        load_from_local_safely(str(path))
    assert not marker.exists()

    # getattr is only resolved for HistoryBuffer's statistic methods, never for anything else.
    for owner, name in [(HistoryBuffer, "__init__"), (np.ndarray, "tofile")]:
        sneaky = tmp_path / "sneaky.pth"
        torch.save({"payload": LooksUpAttribute(owner, name)}, sneaky)
        with pytest.raises(pickle.UnpicklingError, match=f"sneaky.pth: .*attribute lookup '{name}'"):
            load_from_local_safely(str(sneaky))


def test_safe_loader_becomes_mmengine_local_scheme_only_when_installed(tmp_path: Path):
    code = (
        "from mmengine.runner.checkpoint import CheckpointLoader, load_from_local\n"
        "import wsss.engine.checkpoint as c, wsss.engine.training, wsss.engine.runner, wsss.cli.train\n"
        "assert CheckpointLoader._get_checkpoint_loader('x.pth') is load_from_local  # importing changed nothing\n"
        "c.install_safe_checkpoint_loader()\n"
        "assert CheckpointLoader._get_checkpoint_loader('x.pth') is c.load_from_local_safely\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    with pytest.raises(FileNotFoundError, match="missing.pth: checkpoint not found"):
        load_from_local_safely(str(tmp_path / "missing.pth"))


# --- training: resume, load_from, data root ---------------------------------------------------------


def test_resume_matches_uninterrupted_run_and_load_from(
    tiny_voc: Path, tiny_config: Path, tmp_path: Path, capsys
):
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    train(tiny_config, tiny_voc, straight, max_epochs=4)
    train(tiny_config, tiny_voc, interrupted, max_epochs=2)  # the same 4-epoch schedule, stopped after 2
    epoch2 = interrupted / "epoch_2.pth"
    written = epoch2.stat().st_mtime_ns
    train(tiny_config, tiny_voc, interrupted, "--resume", max_epochs=4)

    # Resumed, not retrained: epoch 2 was not written again, and training went on from it.
    assert epoch2.stat().st_mtime_ns == written
    assert (interrupted / "last_checkpoint").read_text().strip().endswith("epoch_4.pth")
    reference, resumed = model_weights(straight / "epoch_4.pth"), model_weights(interrupted / "epoch_4.pth")
    assert reference.keys() == resumed.keys()
    for key in reference:
        assert torch.equal(resumed[key], reference[key]), key  # bit-exact on CPU with one thread
    assert not torch.equal(model_weights(epoch2)["classifier.weight"], reference["classifier.weight"])
    checkpoint = load_from_local_safely(str(interrupted / "epoch_4.pth"))
    assert checkpoint["meta"]["epoch"] == 4 and checkpoint["meta"]["iter"] == 8  # 6 images, batch 4
    assert checkpoint["meta"]["seed"] == 3  # --seed
    losses = checkpoint["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(losses, HistoryBuffer) and len(losses.data[0]) == 8 and losses.mean() > 0

    # --load-from (a work dir: its final checkpoint) puts the weights into a fresh model; --amp on a
    # CPU-only machine notes that it stays fp32.
    cfg, notes = build_train_config(
        tiny_config, tmp_path / "load", tiny_voc, {"experiment_name": "load_from"}, amp=True
    )
    if torch.cuda.is_available():
        assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    else:
        assert cfg.optim_wrapper.type == "OptimWrapper" and "--amp needs CUDA" in notes[0]
    start = choose_start(cfg, None, str(straight))
    assert start.checkpoint == straight / "epoch_4.pth" and not start.resume
    install_safe_checkpoint_loader()
    runner = WSSSRunner.from_cfg(cfg)
    total = len(runner.model.state_dict())
    assert check_start(runner.model, start).endswith(f"({total} of the model's {total} tensors)")
    runner.load_or_resume()
    assert not cfg.resume
    loaded = runner.model.state_dict()
    for key, value in reference.items():
        assert torch.equal(loaded[key], value), key


def test_data_root_class_file_sets_num_classes(tiny_voc: Path, tmp_path: Path):
    config = tmp_path / "voc_named_classes.py"
    config.write_text(f'_base_ = [{str(CAM_VOC)!r}]\nval_dataloader = dict(dataset=dict(classes="voc"))\n')
    cfg = load_config(config, data_root=tiny_voc, cfg_options={"model.backbone.checkpoint": None})
    assert cfg.model.num_classes == 3  # class_names.txt has 3 classes, the VOC config says 21
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        assert cfg[loader].dataset.data_root == str(tiny_voc)
    assert cfg.val_dataloader.dataset.classes is None  # was "voc", which would contradict the file
    assert DATASETS.build(cfg.val_dataloader.dataset).num_classes == 3
    cfg.model.backbone.name = "test_resnet"
    model = MODELS.build(cfg.model)
    assert model.classifier.out_channels == 2

    (tiny_voc / "class_names.txt").unlink()  # without the file the config's classes stay
    cfg = load_config(config, data_root=tiny_voc)
    assert cfg.model.num_classes == 21 and cfg.val_dataloader.dataset.classes == "voc"


# --- distributed ---------------------------------------------------------------------------------------


def test_ddp_two_processes_on_cpu(tiny_voc: Path, tiny_config: Path, tmp_path: Path):
    work_dir = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(TOOL),
        str(tiny_config), "--launcher", "pytorch", "--data-root", str(tiny_voc), "--work-dir", str(work_dir),
        "--cfg-options", "train_cfg.max_epochs=1",
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the CPU/gloo path, also on a machine with one GPU
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = load_from_local_safely(str(work_dir / "epoch_1.pth"))
    # 6 training images over 2 ranks with batch 4 is one iteration per epoch (one process would need 2).
    assert checkpoint["meta"]["iter"] == 1
    assert not any(key.startswith("module.") for key in checkpoint["state_dict"])


# --- command-line errors -----------------------------------------------------------------------------


def test_missing_config_is_one_line_error(tmp_path: Path):
    missing = tmp_path / "nope.py"
    result = subprocess.run(
        [sys.executable, str(TOOL), str(missing)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {missing}: config file not found; "
                                                  "give a path such as configs/bas/cam_shapes.py"]  # fmt: skip


def test_missing_data_root_and_broken_dataset_are_one_line_errors(
    tiny_config: Path, tiny_voc: Path, tmp_path: Path, tool_error
):
    code = train_tool.main([str(tiny_config), "--data-root", str(tmp_path / "absent")])
    tool_error(code, f"^error: {tmp_path / 'absent'}: data root not found")
    (tiny_voc / "ImageSets" / "Segmentation" / "train.txt").unlink()
    tool_error(train(tiny_config, tiny_voc, tmp_path / "broken"), "train.txt: split list not found")
    code = train_tool.main([str(tiny_config), "--resume", str(tmp_path / "none.pth")])
    tool_error(code, "none.pth: checkpoint not found")


def test_resume_without_checkpoint_starts_fresh(tiny_config: Path, tmp_path: Path):
    cfg, _ = build_train_config(tiny_config, tmp_path / "empty")
    start = choose_start(cfg, "auto", None)
    assert start.checkpoint is None and not cfg.resume and cfg.load_from is None
    assert f"no checkpoint in {tmp_path / 'empty'} to resume from" in start.notes[0]


# --- issue 14: checkpoints that do not fit, corrupt ones, atomic saves, config mistakes ----------------


def test_load_from_and_resume_refuse_weights_that_do_not_fit(tiny_config, tiny_voc, tmp_path, tool_error):
    """Finding 3: an unrelated checkpoint or another class count never trains on from random weights."""
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"state_dict": {"head.weight": torch.ones(2, 2)}, "meta": {}}, unrelated)
    work = tmp_path / "load"
    tool_error(train(tiny_config, tiny_voc, work, "--load-from", str(unrelated)),
               rf"^error: {unrelated}: only 0 of the model's \d+ tensors are in it; .*give a checkpoint of this model")  # fmt: skip
    assert not list(work.glob("*.pth"))
    seven = tmp_path / "seven_classes.pth"
    save_random_model(tiny_config, None, seven)  # the shapes classes, not the 3 of tiny_voc
    tool_error(train(tiny_config, tiny_voc, work, "--load-from", str(seven)),
               rf"^error: {seven}: tensor classifier.weight has shape \(6, .*another class count")  # fmt: skip
    # --resume in a work dir whose checkpoint was trained on a dataset with another class count
    resume = tmp_path / "resume"
    resume.mkdir()
    (resume / "epoch_1.pth").write_bytes(seven.read_bytes())
    (resume / "last_checkpoint").write_text(str(resume / "epoch_1.pth"))
    tool_error(train(tiny_config, tiny_voc, resume, "--resume"),
               rf"^error: {resume / 'epoch_1.pth'}: tensor classifier.weight has shape \(6, ")  # fmt: skip


def test_corrupt_checkpoints_are_named_and_never_called_malicious(
    tiny_config, tiny_voc, tmp_path, tool_error
):
    """Finding 4: empty, cut-off, random and text files say what they are, with the file name."""
    whole = tmp_path / "whole.pth"
    save_random_model(tiny_config, tiny_voc, whole)
    data = whole.read_bytes()
    legacy = tmp_path / "legacy.pth"
    torch.save({"state_dict": {"w": torch.ones(2)}}, legacy, _use_new_zipfile_serialization=False)
    cases = {
        "empty.pth": (b"", "the checkpoint file is empty"),
        "half.pth": (data[: len(data) // 2], "not a readable checkpoint, truncated or corrupt"),
        "tail_cut.pth": (data[:-40], "not a readable checkpoint, truncated or corrupt"),
        "legacy_cut.pth": (legacy.read_bytes()[:-20], "not a readable checkpoint, truncated or corrupt"),
        "random.pth": (np.random.default_rng(0).bytes(4096), r"not a checkpoint \(neither a torch zip"),
        "notes.pth": (b"hello\n" * 50, r"not a checkpoint \(neither a torch zip"),
        "list.pth": (pickle.dumps([1, 2, 3]), r"not a checkpoint \(neither a torch zip"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=f"^{path}: {message}") as caught:
            checkpoint_weights(path)
        assert "objects a checkpoint should not hold" not in str(caught.value)
    assert checkpoint_weights(legacy)["w"].tolist() == [1.0, 1.0]
    # through the tool: one line, exit 2, for a cut-off file and for a malicious one
    tool_error(train(tiny_config, tiny_voc, tmp_path / "a", "--load-from", str(tmp_path / "half.pth")),
               rf"^error: {tmp_path / 'half.pth'}: not a readable checkpoint, truncated")  # fmt: skip
    evil = tmp_path / "evil.pth"
    torch.save(
        {"state_dict": {"w": torch.ones(2)}, "payload": RunsShellCommand(f"touch {tmp_path / 'pwned'}")}, evil
    )
    line = tool_error(train(tiny_config, tiny_voc, tmp_path / "b", "--load-from", str(evil)),
                      rf"^error: {evil}: refused to load")  # fmt: skip
    assert "weights_only" not in line and not (tmp_path / "pwned").exists()


def test_resume_falls_back_to_the_newest_whole_checkpoint_and_cleans_killed_saves(tiny_config, tmp_path):
    """Finding 4: last_checkpoint naming a missing or cut-off file resumes from the previous whole one;
    the temporary file of a save killed half-way is deleted at the next start."""
    cfg, _ = build_train_config(tiny_config, tmp_path)
    torch.save({"state_dict": {"w": torch.ones(2)}, "meta": {}}, tmp_path / "epoch_1.pth")
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_2.pth"))
    leftover = tmp_path / ".epoch_2.pth.999999999.tmp"  # no process has that id
    leftover.write_bytes(b"PK\x03\x04 half")
    start = choose_start(cfg, "auto", None)
    assert start.checkpoint == tmp_path / "epoch_1.pth" and start.resume
    assert "epoch_2.pth (named in" in start.notes[0] and "resuming from" in start.notes[0]
    assert not leftover.exists()
    (tmp_path / "epoch_2.pth").write_bytes((tmp_path / "epoch_1.pth").read_bytes()[:100])  # cut off
    assert choose_start(cfg, "auto", None).checkpoint == tmp_path / "epoch_1.pth"


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    """Finding 4: a save that dies half-way leaves no epoch_N.pth (and no temporary) behind."""
    from mmengine.runner import Runner

    def half_then_interrupted(self, out_dir, filename, *args, **kwargs):
        Path(out_dir, filename).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(Runner, "save_checkpoint", half_then_interrupted)
    runner = WSSSRunner.__new__(WSSSRunner)  # save_checkpoint needs no other state of the runner
    with pytest.raises(KeyboardInterrupt):
        runner.save_checkpoint(str(tmp_path), "epoch_2.pth")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(
        Runner, "save_checkpoint", lambda self, out_dir, name, *a, **k: Path(out_dir, name).write_text("x")
    )
    runner.save_checkpoint(str(tmp_path), "epoch_2.pth")
    assert [p.name for p in tmp_path.iterdir()] == ["epoch_2.pth"]


@pytest.mark.parametrize(
    "option, where",
    [
        ("model.backbone.name=resnet_nope", r"at model.backbone.name \(Unknown model \(resnet_nope\)\)"),
        ("model.backbon.name=test_resnet", r"at model.backbon \(.*unexpected keyword argument 'backbon'\)"),
        ("model.type=Nope", r"at model.type \(Nope is not in the wsss::model registry\)"),
        ("train_cfg.max_epochs=-1", r"train_cfg.max_epochs must be a whole number of at least 1, got -1"),
        (
            "train_dataloader.batch_size=0",
            r"at train_dataloader.batch_size \(batch_size should be a positive",
        ),
        ("optim_wrapper.optimizer.lr=-1", r"at optim_wrapper.optimizer.lr \(Invalid learning rate: -1\)"),
        ("optim_wrapper.optimizer.type=Nope", r"at optim_wrapper \("),
    ],
)
def test_config_mistakes_name_the_entry(tiny_config, tiny_voc, tmp_path, tool_error, option, where):
    """Issue 14, finding 9: an unknown backbone, key or type, or a bad value, is one line saying where."""
    work = tmp_path / re.sub(r"\W", "_", option)  # its name keeps mmengine's loggers of the cases apart
    if option.startswith("train_cfg.max_epochs="):  # train() sets max_epochs itself
        code = train(tiny_config, tiny_voc, work, max_epochs=int(option.split("=")[1]))
    else:
        code = train(tiny_config, tiny_voc, work, "--cfg-options", option)
    tool_error(code, f"^error: {tiny_config}: .*{where}")
    assert not list(work.glob("*.pth"))


def test_an_unreadable_val_image_stops_training_validation_with_one_line(
    tiny_config, tiny_voc, tmp_path, tool_error
):
    """Issue 14, finding 11: the validation after the first epoch met an unreadable image: a traceback."""
    broken = tiny_voc / "JPEGImages" / "tiny_007.jpg"  # a val image
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    tool_error(
        train(tiny_config, tiny_voc, tmp_path / "val_broken", max_epochs=1),
        f"^error: {broken}: unreadable image",
    )


# --- CAM model and the mAP metric -----------------------------------------------------------------------


def test_cam_maps_logits_and_predict():
    torch.manual_seed(0)
    model = CAM(backbone=dict(name="test_resnet"), num_classes=4).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        maps = model.class_maps(images)
        _, features = model.backbone(images)
        by_hand = features.mean(dim=(2, 3)) @ model.classifier.weight[:, :, 0, 0].T  # classifier on GAP
        logits = model(images, mode="tensor")
        samples = [
            {"img_id": "a", "cls_label": torch.tensor([1.0, 0, 0])},
            {"img_id": "b", "cls_label": torch.zeros(3)},
        ]
        predicted = model(images, samples, mode="predict")
        as_list = model(list(images), samples, mode="predict")
    assert maps.shape == (2, 3, *features.shape[2:]) and (maps >= 0).all()
    torch.testing.assert_close(logits, by_hand, rtol=1e-4, atol=1e-5)
    assert predicted[0]["img_id"] == "a" and predicted[0]["cls_score"].shape == (3,)
    torch.testing.assert_close(
        torch.stack([p["cls_score"] for p in predicted]), torch.sigmoid(by_hand), rtol=1e-4, atol=1e-5
    )
    torch.testing.assert_close(as_list[1]["cls_score"], predicted[1]["cls_score"], rtol=1e-4, atol=1e-5)
    loss = model(images, samples, mode="loss")["loss_cls"]
    labels = torch.stack([s["cls_label"] for s in samples])
    expected = -(
        labels * torch.nn.functional.logsigmoid(logits)
        + (1 - labels) * torch.nn.functional.logsigmoid(-logits)
    )
    torch.testing.assert_close(loss, expected.mean(), rtol=1e-4, atol=1e-5)


def test_multilabel_map_hand_computed():
    scores = torch.tensor(
        [[0.9, 0.1, 0.3, 0.5], [0.8, 0.4, 0.2, 0.5], [0.7, 0.35, 0.6, 0.2], [0.6, 0.8, 0.1, 0.2]]
    )
    labels = torch.tensor([[1.0, 1, 0, 1], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])
    # class 1: positives at ranks 1 and 3 -> (1 + 2/3) / 2; class 2: ranks 2 and 4 -> (1/2 + 2/4) / 2;
    # class 3: no positive -> left out; class 4: tied pairs, each threshold holds one positive -> 1/2 * 1/2 * 2.
    expected = [5 / 6, 0.5, float("nan"), 0.5]
    torch.testing.assert_close(
        average_precision(scores, labels), torch.tensor(expected, dtype=torch.float64), equal_nan=True
    )

    metric = MultiLabelMAP()
    metric.dataset_meta = {"classes": ("background", "a", "b", "c", "d")}
    metric.process({}, [{"cls_score": s, "cls_label": y} for s, y in zip(scores, labels)])
    result = metric.evaluate(size=4)
    assert result["cls/mAP"] == pytest.approx(100 * (5 / 6 + 0.5 + 0.5) / 3)


def test_average_precision_matches_torchmetrics():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 8, (50, 6), generator=generator).float() / 8  # many ties
    labels = (torch.rand(50, 6, generator=generator) > 0.6).long()
    reference = MultilabelAveragePrecision(num_labels=6, average=None)(scores, labels)
    torch.testing.assert_close(average_precision(scores, labels).float(), reference, rtol=1e-5, atol=1e-6)


def test_torchrun_join_outside_torchrun_names_what_is_missing(monkeypatch, tmp_path, tool_error):
    for name in TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(ValueError, match=r"\(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT missing\)"):
        join_torchrun_group("cpu")
    code = make_seeds.main([str(REPO / "configs/bas/cam_shapes.py"), "x.pth", "--out", str(tmp_path / "seeds"),
                            "--launcher", "pytorch"])  # fmt: skip
    tool_error(code, r"^error: --launcher pytorch needs the environment torchrun sets")
    assert not (tmp_path / "seeds").exists()
