# MARS's ablation on the shapes data (the paper's Table 4 rows, and its alpha / K_bg sensitivity),
# added to the default pipeline: run it in the work dir of a finished shapes.py run and only the new
# stages run (the shared ones are resumed).
#   python tools/run_pipeline.py configs/pipeline/shapes_mars_ablation.py --work-dir work_dirs/demo
# Segmenter rows, all tested on val: base pseudo labels (train_seg); debiased labels with biased
# pixels ignored throughout (the teacher's warm-up never ends); + complementing (teacher labels,
# weight 1); + weighted CE (train_seg_mars, the default). Debiasing rows: alpha 0.2-0.6 with K_bg 2,
# K_bg 1-5 with alpha 0.4, each scored on the training images like eval_debiased.
_base_ = ["./shapes.py"]

_seg_ignore = dict(**{"model.loss.warmup_iters": 100000})
_seg_unweighted = dict(**{"model.loss.weighted": False})


def _debias(**mars):
    return dict(
        type="Debias",
        config="configs/debias/mars_shapes.py",
        pseudo="pseudo_labels",
        features="features",
        cfg_options={f"mars.{k}": v for k, v in mars.items()},
        description=f"MARS with {mars}",
    )


def _eval(labels, key, label):
    return dict(
        type="EvalLabels",
        labels=labels,
        context=True,
        description=f"{labels} against the ground truth",
        report=dict(key=key, label=label),
    )


stages = dict(
    train_seg_ignore=dict(type="Train", config="configs/seg/deeplabv3plus_mars_shapes.py", iters=300, labels="debias",
                          metric="mIoU", cfg_options=_seg_ignore, description="segmenter on debiased labels, biased ignored"),
    test_seg_ignore=dict(type="Test", model="train_seg_ignore", description="debiased, biased ignored, tested on val",
                         report=dict(key="ablation.ignore_biased", label="ablation: debiased labels, biased pixels ignored (val)")),
    train_seg_comp=dict(type="Train", config="configs/seg/deeplabv3plus_mars_shapes.py", iters=300, labels="debias",
                        metric="mIoU", cfg_options=_seg_unweighted, description="segmenter complemented, weight 1"),
    test_seg_comp=dict(type="Test", model="train_seg_comp", description="complemented, unweighted, tested on val",
                       report=dict(key="ablation.complement_unweighted", label="ablation: + complementing, weight 1 (val)")),
    **{f"debias_alpha{a}": _debias(alpha=a / 10) for a in (2, 3, 5, 6)},
    **{f"eval_alpha{a}": _eval(f"debias_alpha{a}", f"ablation.alpha_0{a}", f"ablation: debiased labels, alpha 0.{a} (train)")
       for a in (2, 3, 5, 6)},
    **{f"debias_kbg{k}": _debias(k_bg=k) for k in (1, 3, 4, 5)},
    **{f"eval_kbg{k}": _eval(f"debias_kbg{k}", f"ablation.k_bg_{k}", f"ablation: debiased labels, K_bg {k} (train)")
       for k in (1, 3, 4, 5)},
)  # fmt: skip
report = dict(
    compare=["test_seg", "test_seg_ignore", "test_seg_comp", "test_seg_mars"],
    errors=["eval_pseudo", "eval_debiased", "test_seg", "test_seg_ignore", "test_seg_comp", "test_seg_mars"],
    context=["eval_pseudo", "eval_debiased", *[f"eval_alpha{a}" for a in (2, 3, 5, 6)],
             *[f"eval_kbg{k}" for k in (1, 3, 4, 5)], "context_seg", "context_seg_mars"],
)  # fmt: skip
