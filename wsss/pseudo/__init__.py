"""Pseudo-label stage: seeds to label maps by background thresholds, optional dense CRF."""
