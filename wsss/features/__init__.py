"""Unsupervised dense features (the input MARS needs): feature models, extraction, probes.

``base`` is the interface every feature model offers (``(B, D, h, w)`` at a known stride), ``scratch``
a network that learns here from random weights (IIC), ``vit`` DINO ViTs from local weights, ``stego``
STEGO's head and correspondence loss over a frozen backbone, ``extract`` the multi-scale extraction
into ``<id>.npz`` files (``io``), ``probe`` the cluster / linear / context probes of a feature folder.
"""
