"""tools/make_seeds.py: seed files, the multi-scale computation, resume, torchrun sharding, CAM fusion, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from PIL import Image

from wsss.cli import fuse_seeds, make_seeds
from wsss.data.label_io import read_label_png, write_label_png
from wsss.engine.config import load_config
from wsss.engine.per_image import pending_indices
from wsss.localize.seed_io import is_complete_seed_file, load_seeds, save_seeds, seed_file_layout, seed_path
from wsss.nn.preprocessor import IMAGENET_MEAN, IMAGENET_STD
from wsss.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
BAS_CONFIG = REPO / "configs" / "bas" / "bas_shapes.py"
CAM_CONFIG = REPO / "configs" / "bas" / "cam_shapes.py"
TOOL = REPO / "tools" / "make_seeds.py"
TINY = ["--cfg-options", "model.backbone.name=test_resnet"]
TRAIN_IDS = [f"tiny_{i:03d}" for i in range(6)]


@pytest.fixture
def voc(tiny_voc: Path) -> Path:
    """tiny_voc with its first image (and mask) reshaped to 56x40, so 'original size' is not the square default."""
    image_path = tiny_voc / "JPEGImages" / "tiny_000.jpg"
    Image.open(image_path).resize((56, 40), Image.Resampling.BILINEAR).save(image_path, quality=95)
    mask_path = tiny_voc / "SegmentationClass" / "tiny_000.png"
    mask = Image.fromarray(read_label_png(mask_path)).resize((56, 40), Image.Resampling.NEAREST)
    write_label_png(mask_path, np.asarray(mask))
    return tiny_voc


def save_random_model(config: Path, data_root: Path | None, path: Path, seed: int = 0) -> torch.nn.Module:
    cfg = load_config(config, data_root=data_root, cfg_options={"model.backbone.name": "test_resnet"})
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope("wsss"):
        model = MODELS.build(cfg.model).eval()
    torch.save({"state_dict": model.state_dict(), "meta": {}}, path)
    return model


@pytest.fixture
def bas_checkpoint(voc: Path, tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    path = tmp_path / "bas.pth"
    return save_random_model(BAS_CONFIG, voc, path), path


def run(config: Path, checkpoint: Path, out: Path, voc: Path, *extra: str) -> int:
    return make_seeds.main([str(config), str(checkpoint), "--out", str(out), "--data-root", str(voc),
                     "--workers", "0", "--no-progress", *extra, *TINY])  # fmt: skip


def manual_seeds(model: torch.nn.Module, image_path: Path, keys: list[int], scales=(1.0, 0.5, 1.5, 2.0)):
    """Multi-scale + flip maps written out with the model's class_maps, independently of the library."""
    image = torch.from_numpy(np.asarray(Image.open(image_path).convert("RGB"), dtype=np.float32)).permute(
        2, 0, 1
    )
    image = (image - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    height, width = image.shape[1:]
    total = torch.zeros(model.num_classes - 1, height, width)
    with torch.no_grad():
        for scale in scales:
            scaled = F.interpolate(
                image[None],
                size=(round(height * scale), round(width * scale)),
                mode="bilinear",
                align_corners=False,
            )
            for flipped in (False, True):
                batch = scaled.flip(-1) if flipped else scaled
                maps = model.class_maps(batch)
                maps = maps.flip(-1) if flipped else maps
                total += F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)[0]
    chosen = total[[k - 1 for k in keys]]
    return (chosen / chosen.flatten(1).max(dim=1).values[:, None, None]).numpy()


def test_seed_files_hold_image_classes_at_original_size(voc, bas_checkpoint, tmp_path, capsys):
    model, checkpoint = bas_checkpoint
    out = tmp_path / "seeds"
    run(BAS_CONFIG, checkpoint, out, voc)
    assert "6 written, 0 already there" in capsys.readouterr().out
    assert sorted(p.stem for p in out.glob("*.npz")) == TRAIN_IDS
    for image_id in TRAIN_IDS:
        mask = read_label_png(voc / "SegmentationClass" / f"{image_id}.png")
        with np.load(out / f"{image_id}.npz") as raw:
            assert raw["maps"].dtype == np.float16
            assert raw["keys"].tolist() == [int(v) for v in np.unique(mask) if v != 0]
            assert raw["maps"].shape == (len(raw["keys"]), *mask.shape)
            assert np.allclose(raw["maps"].reshape(len(raw["keys"]), -1).max(axis=1), 1.0, atol=1e-3)
    assert np.load(out / "tiny_000.npz")["maps"].shape[1:] == (40, 56)

    image_id = "tiny_000"  # two classes, non-square
    keys, maps = load_seeds(out / f"{image_id}.npz")
    expected = manual_seeds(model, voc / "JPEGImages" / f"{image_id}.jpg", keys.tolist())
    assert np.abs(maps - expected).max() < 2e-3  # float16 storage


def test_resume_skips_done_files_and_refuses_other_settings(
    tool_error, voc, bas_checkpoint, tmp_path, capsys
):
    _, checkpoint = bas_checkpoint
    out = tmp_path / "seeds"
    run(BAS_CONFIG, checkpoint, out, voc, "--scales", "1.0", "--no-flip")
    for image_id in ("tiny_001", "tiny_004"):
        (out / f"{image_id}.npz").unlink()
    old = 1_000_000_000
    for path in out.glob("*.npz"):
        os.utime(path, (old, old))
    (out / ".tiny_001.999.tmp.npz").write_bytes(b"half a file of a killed run")
    capsys.readouterr()
    run(BAS_CONFIG, checkpoint, out, voc, "--scales", "1.0", "--no-flip")
    assert "2 written, 4 already there" in capsys.readouterr().out
    for image_id in TRAIN_IDS:
        changed = (out / f"{image_id}.npz").stat().st_mtime != old
        assert changed == (image_id in ("tiny_001", "tiny_004")), image_id
    load_seeds(out / "tiny_001.npz")

    tool_error(
        run(BAS_CONFIG, checkpoint, out, voc, "--scales", "1.0"),
        r"seeds.json: records other settings \(flip=False\).*\(flip=True\)",
    )
    in_place = tmp_path / "in_place.pth"
    in_place.write_bytes(Path(checkpoint).read_bytes())
    run(BAS_CONFIG, in_place, tmp_path / "again", voc, "--scales", "1.0")
    with open(in_place, "ab") as handle:  # the same path now holds other bytes (a model retrained in place)
        handle.write(b"retrained")
    tool_error(run(BAS_CONFIG, in_place, tmp_path / "again", voc, "--scales", "1.0"),
               r"seeds.json: records other settings \(checkpoint_sha256=")  # fmt: skip


def test_ranks_share_every_id_once():
    ids = [f"id{i}" for i in range(7)]
    shares = [pending_indices(len(ids), lambda index: False, rank, 3) for rank in range(3)]
    assert sorted(i for share, _ in shares for i in share) == list(range(7))
    assert shares[1] == ([1, 4], 2)
    # Done ids leave the share but not its size; the split between ranks does not move.
    assert pending_indices(len(ids), lambda index: ids[index] == "id4", 1, 3) == ([1], 2)


def test_torchrun_two_cpu_processes_write_each_seed_once(voc, bas_checkpoint, tmp_path):
    _, checkpoint = bas_checkpoint
    out = tmp_path / "seeds"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(TOOL),
        str(BAS_CONFIG), str(checkpoint), "--out", str(out), "--data-root", str(voc), "--launcher", "pytorch",
        "--device", "cpu", "--workers", "0", "--scales", "1.0", *TINY,
    ]  # fmt: skip
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # Written counts are summed over the ranks: 6, not 12, means no id was done twice.
    assert "6 images of split 'train'" in result.stdout and "6 written, 0 already there" in result.stdout
    assert sorted(p.stem for p in out.glob("*.npz")) == TRAIN_IDS
    assert not list(out.glob(".*"))


def test_fuse_cam_is_normalised_sum_of_both_seeds(voc, bas_checkpoint, tmp_path):
    _, bas_path = bas_checkpoint
    cam_path = tmp_path / "cam.pth"
    save_random_model(CAM_CONFIG, voc, cam_path, seed=1)
    scales = ["--scales", "1.0", "0.5"]
    run(BAS_CONFIG, bas_path, tmp_path / "bas", voc, *scales)
    run(CAM_CONFIG, cam_path, tmp_path / "cam", voc, *scales)
    run(BAS_CONFIG, bas_path, tmp_path / "fused", voc, *scales, "--fuse-cam", str(CAM_CONFIG), str(cam_path),
        "--cam-cfg-options", "model.backbone.name=test_resnet")  # fmt: skip
    for image_id in TRAIN_IDS:
        bas_keys, bas = load_seeds(tmp_path / "bas" / f"{image_id}.npz")
        cam_keys, cam = load_seeds(tmp_path / "cam" / f"{image_id}.npz")
        keys, fused = load_seeds(tmp_path / "fused" / f"{image_id}.npz")
        assert keys.tolist() == bas_keys.tolist() == cam_keys.tolist()
        total = bas + cam
        expected = total / total.reshape(len(keys), -1).max(axis=1)[:, None, None]
        assert np.abs(fused - expected).max() < 4e-3

    # Fusing the two seed folders afterwards gives the maps of the in-model fusion.
    assert fuse_seeds.main(["--seeds", str(tmp_path / "bas"), "--cam", str(tmp_path / "cam"),
                            "--out", str(tmp_path / "fused_files"), "--no-progress"]) == 0  # fmt: skip
    for image_id in TRAIN_IDS:
        keys, in_model = load_seeds(tmp_path / "fused" / f"{image_id}.npz")
        file_keys, from_files = load_seeds(tmp_path / "fused_files" / f"{image_id}.npz")
        assert file_keys.tolist() == keys.tolist()
        assert np.abs(from_files - in_model).max() < 4e-3


def test_fuse_seeds_resumes_and_refuses_bad_folders(tool_error, tmp_path, capsys):
    def write(folder: Path, image_id: str, keys: list[int], maps: np.ndarray) -> None:
        save_seeds(seed_path(folder, image_id), np.asarray(keys), maps)

    rng = np.random.default_rng(0)
    bas, cam, out = tmp_path / "bas", tmp_path / "cam", tmp_path / "out"
    for image_id, keys in (("a", [2]), ("b", [1, 3])):
        write(bas, image_id, keys, rng.random((len(keys), 5, 4)))
        write(cam, image_id, keys, rng.random((len(keys), 5, 4)))
    args = ["--seeds", str(bas), "--cam", str(cam), "--out", str(out), "--no-progress"]
    assert fuse_seeds.main(args) == 0
    _, maps = load_seeds(seed_path(out, "b"))
    assert np.allclose(maps.reshape(2, -1).max(axis=1), 1.0, atol=1e-3)
    capsys.readouterr()
    assert fuse_seeds.main(args) == 0
    assert capsys.readouterr().out.strip() == f"2 images in {out}: 0 fused, 2 already there"
    write(out, "a", [2], rng.random((1, 3, 3)))  # a whole file, but not of a's size: fused again
    assert fuse_seeds.main(args) == 0
    assert capsys.readouterr().out.strip() == f"2 images in {out}: 1 fused, 1 already there"
    assert seed_file_layout(seed_path(out, "a")) == ([2], (1, 5, 4))

    tool_error(
        fuse_seeds.main(["--seeds", str(cam), "--cam", str(bas), "--out", str(out), "--no-progress"]),
        "records other settings",
    )
    write(bas, "c", [4], rng.random((1, 5, 4)))
    tool_error(
        fuse_seeds.main([*args[:5], str(tmp_path / "out2"), "--no-progress"]),
        r"error: .*cam: 1 of 3 listed ids have no seed file \(first: c\)",
    )
    assert not (tmp_path / "out2").exists()
    write(cam, "c", [5], rng.random((1, 5, 4)))
    tool_error(
        fuse_seeds.main([*args[:5], str(tmp_path / "out3"), "--no-progress"]),
        r"error: .*c\.npz \(classes \[4\].*do not match",
    )
    assert not list((tmp_path / "out3").glob("c*"))


def test_bad_inputs_are_one_line_errors(tool_error, voc, bas_checkpoint, tmp_path):
    _, checkpoint = bas_checkpoint
    seven_classes = tmp_path / "bas_7.pth"
    save_random_model(BAS_CONFIG, None, seven_classes)  # the shapes config without the 3-class root
    tool_error(
        run(BAS_CONFIG, seven_classes, tmp_path / "a", voc),
        rf"^error: {seven_classes}: tensor classifier.weight has shape \(6,",
    )
    assert not (tmp_path / "a").exists()

    tool_error(
        run(BAS_CONFIG, tmp_path / "missing.pth", tmp_path / "b", voc),
        f"error: {tmp_path / 'missing.pth'}: checkpoint not found",
    )
    (tmp_path / "file").write_text("x")
    tool_error(run(BAS_CONFIG, checkpoint, tmp_path / "file", voc), "--out .*file: is a file")
    (voc / "ImageSets" / "Segmentation" / "empty.txt").write_text("")
    tool_error(
        run(BAS_CONFIG, checkpoint, tmp_path / "c", voc, "--split", "empty"), "empty.txt: split list is empty"
    )


def test_resume_redoes_seed_files_that_are_empty_or_cut_off(voc, bas_checkpoint, tmp_path, capsys):
    """Issue 14, finding 6: a 0-byte or truncated .npz of a killed run is not counted as done."""
    _, checkpoint = bas_checkpoint
    out = tmp_path / "seeds"
    run(BAS_CONFIG, checkpoint, out, voc, "--scales", "1.0", "--no-flip")
    whole = load_seeds(out / "tiny_002.npz")
    (out / "tiny_001.npz").write_bytes(b"")
    cut = out / "tiny_002.npz"
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    capsys.readouterr()
    run(BAS_CONFIG, checkpoint, out, voc, "--scales", "1.0", "--no-flip")
    assert "2 written, 4 already there" in capsys.readouterr().out
    load_seeds(out / "tiny_001.npz")
    np.testing.assert_array_equal(load_seeds(out / "tiny_002.npz")[1], whole[1])


def test_resume_redoes_seed_files_of_another_size_or_other_classes(voc, bas_checkpoint, tmp_path, capsys):
    """Issue 14, finding 6: a whole seed file that is not this image's (other size, other keys) is redone."""
    _, checkpoint = bas_checkpoint
    out = tmp_path / "seeds"
    run(BAS_CONFIG, checkpoint, out, voc, "--scales", "1.0", "--no-flip")
    keys, maps = load_seeds(out / "tiny_001.npz")
    save_seeds(out / "tiny_001.npz", keys, np.ones((keys.size, 7, 5)))
    other = [int(keys.max()) + 1] if keys.size == 1 else keys[:1]
    save_seeds(out / "tiny_002.npz", other, np.ones((len(other), *maps.shape[1:])))
    assert seed_file_layout(out / "tiny_001.npz") == (keys.tolist(), (keys.size, 7, 5))
    capsys.readouterr()
    run(BAS_CONFIG, checkpoint, out, voc, "--scales", "1.0", "--no-flip")
    assert "2 written, 4 already there" in capsys.readouterr().out
    np.testing.assert_array_equal(load_seeds(out / "tiny_001.npz")[1], maps)


def test_seed_file_layout_reads_keys_and_shape_of_whole_files_only(tmp_path):
    path = seed_path(tmp_path, "a")
    save_seeds(path, [2, 5], np.zeros((2, 9, 4)))
    assert seed_file_layout(path) == ([2, 5], (2, 9, 4))
    assert is_complete_seed_file(path, keys=[2, 5], size=(9, 4))
    assert not is_complete_seed_file(path, keys=[2], size=(9, 4))
    assert not is_complete_seed_file(path, size=(4, 9))
    path.write_bytes(path.read_bytes()[:-10])
    assert seed_file_layout(path) is None and seed_file_layout(tmp_path / "missing.npz") is None


def test_fuse_seeds_names_the_input_with_nan_maps(tool_error, tmp_path):
    """Issue 14, finding 5: the error names the bad input file, not fuse_seeds' own output."""
    bas, cam, out = tmp_path / "bas", tmp_path / "cam", tmp_path / "out"
    save_seeds(seed_path(cam, "a"), [1], np.full((1, 5, 4), 0.5))
    bas.mkdir()
    with open(seed_path(bas, "a"), "wb") as handle:
        np.savez_compressed(handle, keys=np.array([1]), maps=np.full((1, 5, 4), np.nan, np.float16))
    tool_error(
        fuse_seeds.main(["--seeds", str(bas), "--cam", str(cam), "--out", str(out), "--no-progress"]),
        f"^error: {seed_path(bas, 'a')}: maps hold NaN",
    )
    assert not seed_path(out, "a").exists()


def test_scales_too_small_for_a_map_are_refused(tool_error, voc, bas_checkpoint, tmp_path):
    """Issue 14, finding 11: --scales 0.01 gave constant maps without a word."""
    _, checkpoint = bas_checkpoint
    tool_error(run(BAS_CONFIG, checkpoint, tmp_path / "s", voc, "--scales", "1.0", "0.01"),
               r"^error: --scales must lie in 0.1..8 \(a map at 1% of the image is constant\)")  # fmt: skip
    assert not (tmp_path / "s").exists()


def test_a_cut_off_checkpoint_is_one_line(tool_error, voc, bas_checkpoint, tmp_path):
    """Issue 14, finding 4: a truncated checkpoint gave a traceback."""
    _, checkpoint = bas_checkpoint
    cut = tmp_path / "cut.pth"
    cut.write_bytes(checkpoint.read_bytes()[:-100])
    tool_error(
        run(BAS_CONFIG, cut, tmp_path / "s", voc), rf"^error: {cut}: not a readable checkpoint, truncated"
    )
    assert not (tmp_path / "s").exists()
