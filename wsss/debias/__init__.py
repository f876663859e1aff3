"""Debiasing stage: MARS removes biased objects (rails labelled train, water labelled boat) from pseudo labels."""
