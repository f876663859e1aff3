"""Tiny random pipelines in the folder layout of the released checkpoints, for tests and benchmarks.

Everything is built locally from random weights (a byte-level tokenizer vocabulary of the
printable ASCII characters, no merges), so nothing is downloaded; a folder takes well under a
megabyte and samples in milliseconds, yet goes through the same loading and sampling code as a
real SD 1.5 / SDXL checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from wsss.synth.released.loader import import_diffusers

TOKEN_LENGTH = 16
WIDTH = 16  # text hidden size and UNet cross-attention width (per text encoder)


def _tokenizer(folder: Path) -> Any:
    from transformers import CLIPTokenizer

    # CLIP's BPE maps printable ASCII bytes to themselves and marks a word's last symbol with </w>.
    symbols = [chr(code) for code in range(33, 127)]
    vocab = {symbol: i for i, symbol in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=TOKEN_LENGTH
    )


def _text_encoder(tokenizer: Any, projection: bool) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=WIDTH, intermediate_size=2 * WIDTH, num_attention_heads=2,
                            num_hidden_layers=1, max_position_embeddings=TOKEN_LENGTH, projection_dim=WIDTH,
                            bos_token_id=tokenizer.convert_tokens_to_ids("<|startoftext|>"), eos_token_id=end, pad_token_id=end)  # fmt: skip
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config)


def write_tiny_pipeline(
    folder: str | os.PathLike,
    shape: str = "sd",
    scheduler: str = "EulerDiscreteScheduler",
    scheduler_config: dict[str, Any] | None = None,
    latent_size: int = 8,
    time_cond_proj_dim: int | None = None,
    seed: int = 0,
) -> Path:
    """Save a random pipeline (``shape`` ``'sd'``: SD 1.5 layout; ``'sdxl'``: two text encoders) into ``folder``.

    Images are ``2 * latent_size`` pixels square (a VAE of two levels). ``scheduler`` names a
    diffusers scheduler class, built with ``scheduler_config``; ``time_cond_proj_dim`` gives the UNet
    the guidance embedding of LCM-distilled models.
    """
    diffusers = import_diffusers()
    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer_dir = folder.parent / f".{folder.name}.vocab"
    tokenizer = _tokenizer(tokenizer_dir)
    encoders = 2 if shape == "sdxl" else 1
    unet_extra: dict[str, Any] = {}
    if shape == "sdxl":
        # SDXL conditions on the pooled second text embedding and six size/crop numbers of 8 features each.
        unet_extra = {"addition_embed_type": "text_time", "addition_time_embed_dim": 8,
                      "projection_class_embeddings_input_dim": WIDTH + 6 * 8}  # fmt: skip
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(8, 16), layers_per_block=1, sample_size=latent_size, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=WIDTH * encoders, norm_num_groups=4, attention_head_dim=2,
        time_cond_proj_dim=time_cond_proj_dim, **unet_extra,
    )  # fmt: skip
    vae = diffusers.AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                                  down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                                  norm_num_groups=4, sample_size=2 * latent_size)  # fmt: skip
    components: dict[str, Any] = {
        "vae": vae,
        "unet": unet,
        "tokenizer": tokenizer,
        "text_encoder": _text_encoder(tokenizer, projection=False),
        # steps_offset=1 as the released SD configs have it (diffusers warns about 0).
        "scheduler": getattr(diffusers, scheduler)(**{"steps_offset": 1, **(scheduler_config or {})}),
    }
    if shape == "sdxl":
        components.update(tokenizer_2=tokenizer, text_encoder_2=_text_encoder(tokenizer, projection=True))
        pipe = diffusers.StableDiffusionXLPipeline(**components)
    else:
        pipe = diffusers.StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None,
                                                 requires_safety_checker=False)  # fmt: skip
    pipe.save_pretrained(folder)
    return folder
