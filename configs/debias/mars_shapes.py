# MARS debiasing settings (tools/mars.py, wsss.debias.mars.MARSSettings): the paper's K_fg = K_bg = 2
# and alpha = 0.4, every other choice as documented in wsss/debias/mars.py.
mars = dict(
    k_fg=2,
    k_bg=2,
    alpha=0.4,
    iterations=20,
    seed=0,
    binarize="crf",  # dense CRF over [(1 - M)^2, M], STEGO/DHR's settings; "threshold" for M > threshold
    threshold=0.5,
    background="squared",
)
