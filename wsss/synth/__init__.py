"""Synthetic training images: one-step generators (released checkpoints and our own), prompt planning.

Beside the pipeline, not in it: ``released`` loads and samples released one-step generators from
local folders (diffusers, optional extra ``synth``), ``flow`` trains our own small rectified-flow
generators, ``prompts`` plans prompts with a belief graph; the synthetic folders they produce are
read by the data stage like any VOC-layout dataset.
"""
