"""A small text encoder trained from scratch with the flow model: word embeddings and a tiny transformer.

Prompts of the shapes data are short (under 30 words) with a few dozen distinct words, so no
pretrained language model is needed (none can be downloaded here anyway). Tokens are embedded with a
learned position, read by ``layers`` pre-norm transformer encoder layers, and give two outputs:

* ``context`` ``(B, L, D)`` and its padding ``mask`` ``(B, L)`` (True = padding), for the UNet's
  cross-attention;
* ``pooled`` ``(B, D)``, the mean over real tokens, added to the UNet's time embedding.

The vocabulary (:class:`~wsss.synth.flow.vocabulary.Vocabulary`) is set once before training from the
training captions and kept in the ``vocabulary_bytes`` buffer, so it is saved in every checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from wsss.synth.flow.vocabulary import PAD_ID, Vocabulary


class TextContext(NamedTuple):
    """What the UNet reads of a batch of prompts."""

    context: Tensor  # (B, L, D)
    mask: Tensor  # (B, L) bool, True where padding
    pooled: Tensor  # (B, D)
    route: Tensor | None = None  # (B,) int64: each prompt's student, for a multi-student model only

    def select(self, index: Tensor) -> TextContext:
        """The rows ``index`` of every part."""
        route = None if self.route is None else self.route[index]
        return TextContext(self.context[index], self.mask[index], self.pooled[index], route)


class TextEncoder(nn.Module):
    """Word embedding + position + ``layers`` transformer layers of width ``dim``.

    ``max_words``: the embedding table's size (the vocabulary must fit); ``max_length``: the longest
    prompt in tokens (start token included); ``vocab_bytes``: room for the saved vocabulary.
    """

    def __init__(self, dim: int = 64, layers: int = 2, heads: int = 4, max_words: int = 256,
                 max_length: int = 48, vocab_bytes: int = 8192):  # fmt: skip
        super().__init__()
        self.dim, self.max_words, self.max_length = dim, max_words, max_length
        self.embed = nn.Embedding(max_words, dim, padding_idx=PAD_ID)
        self.position = nn.Parameter(torch.randn(max_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * 4, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.register_buffer("vocabulary_bytes", torch.zeros(vocab_bytes, dtype=torch.uint8))

    @property
    def vocabulary(self) -> Vocabulary:
        """The vocabulary in the buffer; ValueError when none was set (a model never trained)."""
        vocabulary = Vocabulary.from_buffer(
            self.vocabulary_bytes
        )  # read each time: loading a checkpoint changes it
        if vocabulary is None:
            raise ValueError(
                "the text encoder has no vocabulary; train the model (its VocabularyHook sets one from the "
                "training captions) or load a trained checkpoint"
            )
        return vocabulary

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Keep ``vocabulary`` in the model; ValueError when it has more words than the embedding table."""
        if vocabulary.size > self.max_words:
            raise ValueError(
                f"the training captions have {len(vocabulary.words)} distinct words but the text encoder "
                f"embeds at most {self.max_words - 2}; raise text_encoder.max_words in the config"
            )
        self.vocabulary_bytes.copy_(vocabulary.to_buffer(self.vocabulary_bytes.numel()))

    def forward(self, prompts: Sequence[str]) -> TextContext:
        tokens = self.vocabulary.batch(prompts, self.max_length).to(self.position.device)
        mask = tokens == PAD_ID
        x = self.embed(tokens) + self.position[: tokens.shape[1]]
        x = self.norm(self.transformer(x, src_key_padding_mask=mask))
        keep = (~mask).unsqueeze(-1).float()
        pooled = (x * keep).sum(1) / keep.sum(1)
        return TextContext(x, mask, pooled)
