"""Released one-step generators through diffusers, on tiny random pipelines saved as real checkpoint folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from wsss.synth.generator import TextToImageGenerator  # noqa: E402
from wsss.synth.released import load_released  # noqa: E402
from wsss.synth.released.generator import to_uint8  # noqa: E402
from wsss.synth.released.tiny import write_tiny_pipeline  # noqa: E402

TRAILING = {"timestep_spacing": "trailing"}
PROMPTS = ["a cat on a mat", "two dogs", "a bird"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """One tiny folder per family, laid out as the released checkpoints are (16x16 images)."""
    root = tmp_path_factory.mktemp("released")
    made = {
        "sd-turbo": write_tiny_pipeline(root / "sd-turbo", scheduler_config=TRAILING),
        "instaflow": write_tiny_pipeline(root / "instaflow", scheduler="PNDMScheduler", seed=1),
        "lcm": write_tiny_pipeline(root / "lcm", scheduler="LCMScheduler", time_cond_proj_dim=8, seed=2),
        "base": write_tiny_pipeline(root / "base", seed=3),
        "sdxl-turbo": write_tiny_pipeline(
            root / "sdxl-turbo",
            shape="sdxl",
            scheduler="EulerAncestralDiscreteScheduler",
            scheduler_config=TRAILING,
        ),  # fmt: skip
    }
    # InstaFlow's folders name its own pipeline class, which is how the family is told apart.
    index_path = made["instaflow"] / "model_index.json"
    index = json.loads(index_path.read_text())
    index_path.write_text(json.dumps({**index, "_class_name": "RectifiedFlowPipeline"}))
    # DMD2: a distilled UNet of the base model's architecture, in a file of its own.
    other = write_tiny_pipeline(root / "other", seed=4)
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    made["dmd2-weights"] = root / "dmd2_unet.safetensors"
    save_file(UNet2DConditionModel.from_pretrained(other / "unet").state_dict(), made["dmd2-weights"])
    return made


def _load(folders: dict[str, Path], family: str, **kwargs):
    if family == "dmd2":
        return load_released(folders["base"], "dmd2", unet_weights=folders["dmd2-weights"], **kwargs)
    return load_released(folders[family], family, **kwargs)


def _record_unet(generator) -> list[tuple[tuple[int, ...], list[float]]]:
    """Wrap the UNet's forward to record (input shape, distinct timesteps) of each call."""
    calls, forward = [], generator.pipe.unet.forward

    def recording(sample, timestep, *args, **kwargs):
        times = sorted(set(torch.as_tensor(timestep).flatten().tolist()))  # a scalar or one per sample
        calls.append((tuple(sample.shape), times))
        return forward(sample, timestep, *args, **kwargs)

    generator.pipe.unet.forward = recording
    return calls


@pytest.mark.parametrize("family", ["instaflow", "sd-turbo", "dmd2", "lcm", "sdxl-turbo"])
def test_family_samples_deterministic_images_per_seed(folders, family):
    generator = _load(folders, family)
    assert isinstance(generator, TextToImageGenerator)
    assert (generator.name, generator.resolution) == (family, 16)
    steps, guidance = generator.default_steps, generator.default_guidance
    images = generator.sample(PROMPTS, [7, 8, 9], steps, guidance)
    assert images.shape == (3, 16, 16, 3) and images.dtype == np.uint8
    # The same seed gives the same image in another batch, at another position, beside other prompts.
    alone = generator.sample([PROMPTS[1]], [8], steps, guidance)
    np.testing.assert_array_equal(alone[0], images[1])
    reordered = generator.sample([PROMPTS[2], PROMPTS[1]], [9, 8], steps, guidance)
    np.testing.assert_array_equal(reordered[1], images[1])
    np.testing.assert_array_equal(reordered[0], images[2])
    # Another seed (same prompt) gives another image.
    other = generator.sample([PROMPTS[1]], [11], steps, guidance)
    assert np.abs(other[0].astype(int) - images[1]).mean() > 0.5


def test_family_detected_from_the_folder(folders):
    assert load_released(folders["instaflow"]).name == "instaflow"
    assert load_released(folders["sd-turbo"]).name == "sd-turbo"
    assert load_released(folders["sdxl-turbo"]).name == "sdxl-turbo"
    assert load_released(folders["lcm"]).name == "lcm"
    assert load_released(folders["base"], unet_weights=folders["dmd2-weights"]).name == "dmd2"
    with pytest.raises(ValueError, match=r"cannot tell the family.*--family"):
        load_released(folders["base"])
    with pytest.raises(ValueError, match="SDXL-shaped.*check --family"):
        load_released(folders["sdxl-turbo"], "sd-turbo")
    with pytest.raises(ValueError, match="separate file.*--unet-weights"):
        load_released(folders["base"], "dmd2")


@pytest.mark.parametrize("component", ["text_encoder", "tokenizer", "vae", "scheduler", "unet"])
def test_missing_component_is_named(folders, tmp_path, component):
    folder = shutil.copytree(folders["sd-turbo"], tmp_path / "incomplete")
    shutil.rmtree(folder / component)
    with pytest.raises(FileNotFoundError) as err:
        load_released(folder)
    message = str(err.value)
    assert "\n" not in message and f"has no {component} " in message and str(folder) in message


def test_sdxl_missing_second_encoder_is_named(folders, tmp_path):
    folder = shutil.copytree(folders["sdxl-turbo"], tmp_path / "incomplete")
    shutil.rmtree(folder / "text_encoder_2")
    with pytest.raises(FileNotFoundError, match="has no text_encoder_2 "):
        load_released(folder)


def _controlled_unet(generator, velocity):
    """Make the UNet return ``velocity(sample, timestep, encoder_hidden_states)``; returns the list of calls."""
    calls = []

    def forward(sample, timestep, encoder_hidden_states=None, **kwargs):
        calls.append(torch.as_tensor(timestep).flatten().tolist())
        return SimpleNamespace(sample=velocity(sample, torch.as_tensor(timestep), encoder_hidden_states))

    generator.pipe.unet.forward = forward
    return calls


def _decode(generator, latents: torch.Tensor) -> np.ndarray:
    vae = generator.pipe.vae
    with torch.no_grad():
        images = vae.decode(latents / vae.config.scaling_factor).sample
    return to_uint8((images / 2 + 0.5).clamp(0, 1))


def _noise(seed: int) -> torch.Tensor:
    return torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(seed))


def test_instaflow_one_step_is_noise_plus_velocity_at_t_1000(folders):
    generator = load_released(folders["instaflow"])
    # v(x, t) = -0.5 x + t / 2000: one Euler step from t=1000 gives x = z + v(z, 1000) = 0.5 z + 0.5.
    calls = _controlled_unet(generator, lambda x, t, _: -0.5 * x + t.view(-1, 1, 1, 1) / 2000)
    images = generator.sample(PROMPTS[:2], [3, 4], steps=1, guidance=0.0)
    assert calls == [[1000.0, 1000.0]]
    expected = np.concatenate([_decode(generator, 0.5 * _noise(seed) + 0.5) for seed in (3, 4)])
    np.testing.assert_array_equal(images, expected)
    # Two steps: t = 1000 then 500, each advancing by half the velocity.
    calls.clear()
    two = generator.sample(PROMPTS[:1], [3], steps=2, guidance=0.0)
    assert calls == [[1000.0], [500.0]]
    z = _noise(3)
    x = z + 0.5 * (-0.5 * z + 0.5)
    x = x + 0.5 * (-0.5 * x + 0.25)
    np.testing.assert_array_equal(two, _decode(generator, x))


def test_instaflow_guidance_mixes_prompt_and_empty_velocity(folders):
    generator = load_released(folders["instaflow"])
    tokenizer, encoder = generator.pipe.tokenizer, generator.pipe.text_encoder

    def embed(text: str) -> torch.Tensor:
        ids = tokenizer([text], padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids  # fmt: skip
        with torch.no_grad():
            return encoder(ids)[0]

    # v = the text embedding's first feature averaged over tokens (each token's features are layer-normed
    # to mean 0, the first alone is not), so v(.|prompt) and v(.|"") differ and guidance a mixes them.
    _controlled_unet(
        generator, lambda x, t, h: torch.zeros_like(x) + h[:, :, 0].mean(dim=1).view(-1, 1, 1, 1)
    )
    v_prompt, v_empty = embed(PROMPTS[0])[:, :, 0].mean(), embed("")[:, :, 0].mean()
    assert abs(float(v_prompt - v_empty)) > 1e-3
    images = generator.sample(PROMPTS[:1], [5], steps=1, guidance=3.0)
    expected = _noise(5) + (v_empty + 3.0 * (v_prompt - v_empty))
    np.testing.assert_array_equal(images, _decode(generator, expected))


def test_dmd2_loads_its_unet_file_and_samples_at_999(folders):
    from diffusers import LCMScheduler
    from safetensors.torch import load_file

    generator = _load(folders, "dmd2")
    assert isinstance(generator.pipe.scheduler, LCMScheduler)
    weights = load_file(folders["dmd2-weights"])
    for key, value in generator.pipe.unet.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)
    calls = _record_unet(generator)
    generator.sample(PROMPTS[:2], [1, 2], 1, 0.0)
    assert calls == [((2, 4, 8, 8), [999.0])]
    calls.clear()
    generator.sample(PROMPTS[:1], [1], 4, 0.0)
    assert [times for _, times in calls] == [[999.0], [749.0], [499.0], [249.0]]


def test_dmd2_refuses_a_unet_file_of_another_model(folders, tmp_path):
    from safetensors.torch import load_file, save_file

    weights = load_file(folders["dmd2-weights"])
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, tmp_path / "partial.safetensors")
    with pytest.raises(ValueError, match=rf"does not fit the UNet.*1 weights missing \(first: {dropped}\)"):
        load_released(folders["base"], "dmd2", unet_weights=tmp_path / "partial.safetensors")


def test_lcm_takes_the_requested_steps_with_lcm_scheduler(folders):
    from diffusers import LCMScheduler

    generator = load_released(folders["lcm"])
    assert isinstance(generator.pipe.scheduler, LCMScheduler) and generator.default_steps == 4
    calls = _record_unet(generator)
    for steps in (2, 4):
        calls.clear()
        generator.sample(PROMPTS[:2], [1, 2], steps, 1.0)
        assert len(calls) == steps and all(shape[0] == 2 for shape, _ in calls)
    # A base pipeline with another scheduler runs as LCM with diffusers' LCMScheduler.
    assert isinstance(load_released(folders["base"], "lcm").pipe.scheduler, LCMScheduler)


def test_dtype_and_arguments(folders):
    generator = load_released(folders["sd-turbo"], dtype="bfloat16")
    assert generator.dtype == torch.bfloat16 and generator.device.type == "cpu"
    images = generator.sample(PROMPTS[:1], [0], 1, 0.0)
    assert images.shape == (1, 16, 16, 3) and images.dtype == np.uint8
    assert load_released(folders["sd-turbo"]).dtype == torch.float32  # the CPU default
    with pytest.raises(ValueError, match="one seed per prompt"):
        generator.sample(PROMPTS[:2], [0], 1, 0.0)
    with pytest.raises(ValueError, match="steps must be at least 1"):
        generator.sample(PROMPTS[:1], [0], 0, 0.0)
    with pytest.raises(ValueError, match="unknown dtype"):
        load_released(folders["sd-turbo"], dtype="float8")
