"""Our own small text-conditioned rectified-flow generators, trained from scratch on the toolkit's data.

One concept per module: ``vocabulary`` (words and classes from the training captions), ``text_encoder``
(prompts to a context sequence), ``unet`` (the velocity network), ``model`` (the mmengine model and
its rectified-flow loss), ``sampler`` (Euler ODE steps with classifier-free guidance), ``generator``
(the :class:`~wsss.synth.generator.TextToImageGenerator` a trained checkpoint becomes), ``pairs``
(reflow pairs in resumable shards), ``students`` (multi-student distillation: one UNet per class
group), ``perceptual`` (the distillation's perceptual distance in our classifier's features) and
``evaluation`` (straightness, one-step gap, grids).
"""
