"""Localizer stage: multi-scale seeds from trained localizers, and WSOL evaluation."""
