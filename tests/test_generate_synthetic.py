"""tools/generate_synthetic.py end to end with a tiny random SD-Turbo-shaped folder, read back by the toolkit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from wsss.cli.generate_synthetic import main  # noqa: E402
from wsss.data.classes import write_class_names  # noqa: E402
from wsss.data.dataset import ImageLabelDataset  # noqa: E402
from wsss.synth.released import load_released  # noqa: E402
from wsss.synth.released.tiny import write_tiny_pipeline  # noqa: E402

CLASSES = ("background", "cat", "dog", "potted plant")


@pytest.fixture(scope="module")
def turbo(tmp_path_factory) -> Path:
    return write_tiny_pipeline(
        tmp_path_factory.mktemp("gen") / "sd-turbo", scheduler_config={"timestep_spacing": "trailing"}
    )


@pytest.fixture
def classes(tmp_path) -> Path:
    write_class_names(tmp_path / "classes.txt", CLASSES)
    return tmp_path / "classes.txt"


def test_writes_a_voc_folder_the_dataset_reads(turbo, classes, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "a cat and two dogs"}\n\n{"prompt": "a photo", "classes": ["potted plant"], "seed": 42}\n'
                       '{"prompt": "potted plants by a dog"}\n')  # fmt: skip
    out = tmp_path / "synth"
    args = ["--generator", str(turbo), "--prompts", str(prompts), "--classes", str(classes), "--out", str(out),
            "--batch-size", "2", "--seed", "10", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    dataset = ImageLabelDataset(out, split="train", with_mask=False)
    assert dataset.img_ids == ["synth_000000", "synth_000001", "synth_000002"]
    assert dataset.cls_labels == [[1, 2], [3], [2, 3]]
    assert dataset.class_names == CLASSES
    assert dataset[0]["inputs"].shape == (3, 16, 16)
    manifest = json.loads((out / "manifest.json").read_text())
    entry = manifest["images"]["synth_000001"]
    assert entry == {"prompt": "a photo", "seed": 42, "generator": "sd-turbo", "steps": 1, "guidance": 0.0,
                     "classes": ["potted plant"]}  # fmt: skip
    assert manifest["images"]["synth_000002"]["seed"] == 12  # base seed + index
    # The JPEG holds the generator's image for that prompt and seed (up to JPEG loss).
    expected = load_released(turbo).sample(["potted plants by a dog"], [12], 1, 0.0)[0]
    written = np.asarray(Image.open(out / "JPEGImages" / "synth_000002.jpg"), dtype=float)
    assert np.abs(written - expected).mean() < 4

    # Resumed: finished images are kept; a changed prompt is made again.
    before = {p.name: p.stat().st_mtime_ns for p in (out / "JPEGImages").iterdir()}
    prompts.write_text(prompts.read_text().replace("two dogs", "three dogs"))
    assert main(args) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (out / "JPEGImages").iterdir()}
    assert [name for name in before if before[name] != after[name]] == ["synth_000000.jpg"]
    assert (
        json.loads((out / "manifest.json").read_text())["images"]["synth_000000"]["prompt"]
        == "a cat and three dogs"
    )


def test_user_errors(turbo, classes, tmp_path, tool_error):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat\na tree\n")
    base = [
        "--generator",
        str(turbo),
        "--prompts",
        str(prompts),
        "--out",
        str(tmp_path / "o"),
        "--no-progress",
    ]
    tool_error(
        main([*base, "--classes", str(classes)]),
        r"p\.txt:2: the prompt 'a tree' names none of the classes \(cat, dog, potted plant\)",
    )
    tool_error(main([*base, "--steps", "0"]), "--steps must be at least 1")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a cat"}\n{"prompt": "a dog",}\n')
    tool_error(
        main([*base[:2], "--prompts", str(bad), "--out", str(tmp_path / "o")]),
        r"bad\.jsonl:2: not a JSON object",
    )
    tool_error(main(["--prompts", str(prompts), "--out", str(tmp_path / "o")]), "either --generator")
    tool_error(
        main(
            [
                "--config",
                "c.py",
                "--checkpoint",
                "x.pth",
                "--prompts",
                str(prompts),
                "--out",
                str(tmp_path / "o"),
            ]
        )
    )
    tool_error(main(["--generator", str(tmp_path), "--prompts", str(prompts), "--out", str(tmp_path / "o")]),
               "no model_index.json")  # fmt: skip
    # A folder made with other settings is refused.
    assert main(base) == 0
    tool_error(main([*base, "--steps", "2"]), "records other settings")
