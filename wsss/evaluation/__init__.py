"""Evaluation: confusion matrices and scores, seed sweeps, WSOL boxes, and mmengine metrics."""
