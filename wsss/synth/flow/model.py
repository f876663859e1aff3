"""The rectified-flow model as an mmengine model: text encoder + UNet, the flow loss, and its vocabulary hook.

Convention (METHODS.md section 3): noise at t = 0, data at t = 1. ``x_t = t * x1 + (1 - t) * x0`` with
``x0 ~ N(0, I)`` and ``x1`` an image scaled to [-1, 1]; the network predicts the velocity and the loss
is ``mean || v(x_t, t | c) - (x1 - x0) ||^2``. Sampling integrates ``dx/dt = v`` from 0 to 1.

One class serves every stage, by config:

* 1-RF: images with captions, ``x0`` drawn fresh each step, ``t ~ U(0, 1)``, captions dropped to the
  empty prompt with probability ``cond_dropout`` (for classifier-free guidance);
* reflow (2-RF): the same loss on fixed (noise, ODE sample, caption) pairs: a pair sample carries
  ``noise`` and its input is the teacher's float sample;
* one-step distillation: the pairs with ``time_sampling='zero'``: at t = 0 the loss is exactly
  ``|| x0 + v(x0, 0 | c) - ODE[v_k](x0 | c) ||^2``, the L2 distillation loss;
* multi-student distillation (MSD): the same with ``num_students = K``: K UNets, each prompt (and
  each training pair) served by the student of its classes (:mod:`wsss.synth.flow.students`);
* with ``perceptual``, the loss adds a perceptual distance between the predicted end point
  ``x_t + (1 - t) v`` and ``x1`` in the features of our own classifier
  (:mod:`wsss.synth.flow.perceptual`): InstaFlow's second distillation stage, after L2 alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.model import BaseDataPreprocessor, BaseModel, is_model_wrapper
from torch import Tensor

from wsss.registry import HOOKS, MODELS
from wsss.synth.flow.perceptual import ClassifierPerceptualDistance
from wsss.synth.flow.students import (
    StudentUNets,
    class_groups,
    load_single_network_into_students,
    student_routes,
)
from wsss.synth.flow.text_encoder import TextContext, TextEncoder
from wsss.synth.flow.unet import FlowUNet
from wsss.synth.flow.vocabulary import Vocabulary

TIME_SAMPLINGS = ("uniform", "zero")


def flow_loss(velocity: Tensor, x0: Tensor, x1: Tensor) -> Tensor:
    """``mean || v - (x1 - x0) ||^2`` over every element: the rectified-flow regression loss."""
    return F.mse_loss(velocity, x1 - x0)


def interpolate(x0: Tensor, x1: Tensor, t: Tensor) -> Tensor:
    """``x_t = t * x1 + (1 - t) * x0`` with one ``t`` per image."""
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return t * x1 + (1.0 - t) * x0


@MODELS.register_module()
class FlowDataPreprocessor(BaseDataPreprocessor):
    """uint8 images (0-255) to [-1, 1]; float inputs (a teacher's samples, already in that space) unchanged."""

    def forward(self, data: dict, training: bool = False) -> dict[str, Any]:
        data = self.cast_data(data)
        inputs = data["inputs"]
        if not isinstance(inputs, Tensor):
            raise ValueError(
                "the flow model needs equal-size images; add ResizeShorter and PadCrop to the pipeline"
            )
        inputs = inputs.float() / 127.5 - 1.0 if inputs.dtype == torch.uint8 else inputs.float()
        return {"inputs": inputs, "data_samples": data["data_samples"]}


@MODELS.register_module()
class RectifiedFlow(BaseModel):
    """Text-conditioned velocity model ``v(x_t, t | prompt)`` on ``image_size`` px RGB images.

    ``text_encoder`` / ``unet``: keyword arguments of :class:`TextEncoder` / :class:`FlowUNet`.
    ``cond_dropout``: share of training captions replaced by the empty prompt. ``time_sampling``:
    ``'uniform'`` (t ~ U(0, 1)) or ``'zero'`` (one-step distillation). ``name``, ``default_steps`` and
    ``default_guidance`` describe how the trained model is meant to be sampled (see
    :class:`~wsss.synth.flow.generator.FlowGenerator`). ``num_students``: UNets of a multi-student model,
    each for one of ``student_groups`` (lists of class names; default: consecutive blocks of the
    vocabulary's classes); it starts from a single-network checkpoint by copying it into each.
    ``perceptual``: ``dict(config, checkpoint, size, weight, cfg_options)`` of the classifier whose
    features the perceptual term (times ``weight``) is measured in, ``size`` the side it was validated at.
    """

    def __init__(self, image_size: int = 32, text_encoder: dict | None = None, unet: dict | None = None,
                 cond_dropout: float = 0.1, time_sampling: str = "uniform", name: str = "rf1",
                 default_steps: int = 20, default_guidance: float = 1.0, num_students: int = 1,
                 student_groups: Sequence[Sequence[str]] | None = None, perceptual: dict | None = None,
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None):  # fmt: skip
        super().__init__(data_preprocessor=data_preprocessor or FlowDataPreprocessor(), init_cfg=init_cfg)
        if time_sampling not in TIME_SAMPLINGS:
            raise ValueError(f"time_sampling must be one of {TIME_SAMPLINGS}, got {time_sampling!r}")
        if not 0.0 <= cond_dropout < 1.0:
            raise ValueError(f"cond_dropout must lie in [0, 1), got {cond_dropout}")
        if num_students < 1:
            raise ValueError(f"num_students must be at least 1, got {num_students}")
        if num_students > 1 and cond_dropout > 0:
            raise ValueError(
                "a multi-student model picks a student by the classes of a prompt and a dropped (empty) "
                "caption names none; set cond_dropout=0 (students are distilled from guided pairs)"
            )
        self.image_size, self.cond_dropout, self.time_sampling = image_size, cond_dropout, time_sampling
        self.name, self.default_steps, self.default_guidance = name, default_steps, default_guidance
        self.num_students, self.student_groups = num_students, student_groups
        if perceptual is not None:
            missing = [key for key in ("config", "checkpoint", "size") if key not in perceptual]
            if missing:
                raise ValueError(
                    f"model.perceptual lacks {', '.join(missing)}: give the classifier's config, its checkpoint "
                    "(.pth or work dir) and the side it was validated at"
                )
        self.perceptual_weight = 0.0 if perceptual is None else float(perceptual.get("weight", 1.0))
        self._perceptual_settings = perceptual
        self._perceptual: ClassifierPerceptualDistance | None = (
            None  # built on first use, not in the state dict
        )
        self.text_encoder = TextEncoder(**(text_encoder or {}))
        unet_args = dict(context_dim=self.text_encoder.dim, **(unet or {}))
        if num_students == 1:
            self.unet = FlowUNet(**unet_args)
        else:
            self.unet = StudentUNets(num_students, **unet_args)
            self._register_load_state_dict_pre_hook(self._into_students)

    def _into_students(self, state_dict: dict, prefix: str, *args: Any) -> None:
        load_single_network_into_students(state_dict, prefix, self.num_students)

    def adapt_state_dict(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """``state`` as this model loads it: a single network's UNet copied into each student."""
        if self.num_students > 1:
            load_single_network_into_students(state, "", self.num_students)
        return state

    @property
    def vocabulary(self) -> Vocabulary:
        return self.text_encoder.vocabulary

    def groups(self) -> list[tuple[str, ...]]:
        """The classes of each student (one group, all classes, for a single-network model)."""
        return class_groups(self.vocabulary.classes, self.num_students, self.student_groups)

    def encode(self, prompts: Sequence[str]) -> TextContext:
        """The text context of ``prompts`` (ValueError for unknown words or a prompt without a class).

        A multi-student model's context carries each prompt's student (ValueError for a prompt naming no class).
        """
        text = self.text_encoder(prompts)
        if self.num_students == 1:
            return text
        return text._replace(
            route=student_routes(self.vocabulary, self.groups(), prompts).to(text.pooled.device)
        )

    def velocity(self, x: Tensor, t: Tensor, text: TextContext) -> Tensor:
        """``v(x_t, t | text)``; ``t`` is one time per image (or a scalar for all)."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(x.shape[0])
        return self.unet(x, t, text)

    def forward(self, inputs: Tensor, data_samples: Sequence[dict] | None = None, mode: str = "loss") -> Any:
        if mode == "loss":
            return self.loss(inputs, data_samples)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        raise ValueError(f"a flow model runs in mode 'loss' or 'predict' (sample images), not {mode!r}")

    def loss(self, inputs: Tensor, data_samples: Sequence[dict]) -> dict[str, Tensor]:
        """The flow loss of a batch: ``inputs`` are x1; a sample's ``noise`` (reflow pairs) fixes its x0."""
        x1 = inputs
        if "noise" in data_samples[0]:
            x0 = torch.stack([sample["noise"] for sample in data_samples]).to(x1)
        else:
            x0 = torch.randn_like(x1)
        captions = [sample["caption"] for sample in data_samples]
        if self.cond_dropout > 0:
            drop = torch.rand(len(captions)).tolist()
            captions = ["" if r < self.cond_dropout else text for r, text in zip(drop, captions)]
        if self.time_sampling == "zero":
            t = torch.zeros(x1.shape[0], device=x1.device)
        else:
            t = torch.rand(x1.shape[0], device=x1.device)
        x_t = interpolate(x0, x1, t)
        velocity = self.velocity(x_t, t, self.encode(captions))
        losses = {"loss_flow": flow_loss(velocity, x0, x1)}
        if self.perceptual_weight > 0:
            end = x_t + (1.0 - t).view(-1, 1, 1, 1) * velocity
            losses["loss_perceptual"] = self.perceptual_weight * self.perceptual_distance()(end, x1).mean()
        return losses

    def perceptual_distance(self) -> ClassifierPerceptualDistance:
        """The perceptual distance of the ``perceptual`` setting (its classifier loaded on first use)."""
        if self._perceptual is None:
            settings = self._perceptual_settings
            self._perceptual = ClassifierPerceptualDistance(settings["config"], settings["checkpoint"],
                                                            len(self.vocabulary.classes) + 1, settings["size"],
                                                            settings.get("cfg_options"))  # fmt: skip
        return self._perceptual

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: Sequence[dict]) -> list[dict]:
        """The samples with ``pred_image`` (uint8 (3, H, W)): their caption sampled from seed = position."""
        from wsss.synth.flow.generator import FlowGenerator

        generator = FlowGenerator(self)
        prompts = [sample["caption"] for sample in data_samples]
        images = generator.sample(
            prompts, list(range(len(prompts))), self.default_steps, self.default_guidance
        )
        return [{**sample, "pred_image": torch.from_numpy(image.transpose(2, 0, 1))}
                for sample, image in zip(data_samples, images)]  # fmt: skip


@HOOKS.register_module()
class VocabularyHook(Hook):
    """Before training, give the model the vocabulary of its training data.

    That is the dataset's ``vocabulary`` when it has one (reflow pairs keep their teacher's), else the
    words of its captions (``all_captions()``) with its class names, background excluded.

    A model that already has one (resumed, or started from a trained checkpoint: reflow and
    distillation start from their teacher) keeps it, provided the data's is the same.
    """

    priority = "VERY_HIGH"

    def before_train(self, runner: Any) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataset = runner.train_dataloader.dataset
        wanted = getattr(dataset, "vocabulary", None)
        if wanted is None:
            wanted = Vocabulary.from_captions(dataset.all_captions(), dataset.class_names[1:])
        try:
            current = model.vocabulary
        except ValueError:
            model.text_encoder.set_vocabulary(wanted)
            runner.logger.info(f"vocabulary: {len(wanted.words)} words, classes {', '.join(wanted.classes)}")
            current = wanted
        if model.num_students > 1:  # student groups are checked against the classes before any step
            runner.logger.info("students: " + " | ".join(", ".join(group) for group in model.groups()))
        if current != wanted:
            raise ValueError(
                f"the starting checkpoint knows {len(current.words)} words and classes {list(current.classes)}, "
                f"the training data {len(wanted.words)} words and {list(wanted.classes)}; start from a checkpoint "
                "trained on this data or from scratch"
            )
