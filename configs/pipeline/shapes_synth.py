# The shapes pipeline with a "synthetic" stage group (METHODS.md section 3): does adding images from
# a generator trained on the real training images help the segmenter, with natural prompts or with
# counter-bias ones? Three segmenters, the same budget each, tested on the same val split:
#   test_seg                  real images and their pseudo labels only (shapes.py)     segmenter_miou
#   test_seg_synth            + synthetic images from natural prompts                  segmenter_synth_miou
#   test_seg_synth_balanced   + synthetic images from counter-bias prompts             segmenter_synth_balanced_miou
# with boat and train IoU and the share of water (rails) pixels the segmenter calls boat (train) on val.
#
# The group: a small 1-rectified flow (configs/synth/rf1_shapes.py, 32 px, its 20 Euler steps at
# guidance 2) trained once on the real training images and their captions; the belief-graph planner
# on the training captions writes natural prompts (P(context | class) as in the data: most boats on
# water) and counter-bias prompts (--balance-contexts: every class gets the class-free context
# distribution, so boats on rails or on nothing as often as trains); the generator draws them; the
# CAM classifier keeps the images it agrees with (every prompted class at sigmoid >= 0.5, no
# unprompted one >= 0.9); the BAS localizer makes their seeds, labelled at the threshold its seeds
# reached on the real images (sweep_bas) with the same CRF; each mixed segmenter sees all real images
# and `synthetic_ratio` synthetic images per real one per epoch (configs/seg/deeplabv3plus_shapes_mixed.py).
#
# Left out on purpose: context-only prompts (background images) - the generator's vocabulary refuses
# a prompt naming no class, since it never saw an image without one; contexts the data never show
# (snow, indoor, ...) - the planner's smoothing is set small (alpha 0.05), as the shapes world is closed.
# Budget: the group adds about 10 minutes on 2 cores beside the base pipeline (the generator's 1,200
# steps are most of it; each variant then costs its images, labels and segmenter run).
#   python tools/run_pipeline.py configs/pipeline/shapes_synth.py --work-dir work_dirs/shapes_synth
_base_ = ["./shapes.py"]

generator_config = "configs/synth/rf1_shapes.py"
mixed_seg_config = "configs/seg/deeplabv3plus_shapes_mixed.py"
synthetic_ratio = 0.5
synthetic_scales = (1.0, 0.5, 1.5)  # the localizers' seed scales (shapes.py)
plan = dict(n=300, seed=0, split="train", alpha=0.05, context_only_share=0.0)

stages = dict(
    train_generator=dict(type="Train", config=generator_config, iters=1200,
                         description="text-to-image generator (1-RF, 32 px) on the real training images and captions"),
    plan_natural=dict(type="PlanPrompts", **plan, description="natural prompts from the training captions' belief graph"),
    plan_balanced=dict(type="PlanPrompts", **plan, balance_contexts=True,
                       description="counter-bias prompts: contexts independent of the class"),
    gen_natural=dict(type="Generate", model="train_generator", prompts="plan_natural", description="images of the natural prompts"),
    gen_balanced=dict(type="Generate", model="train_generator", prompts="plan_balanced", description="images of the counter-bias prompts"),
    filter_natural=dict(type="FilterSynthetic", model="train_cam", synthetic="gen_natural", threshold=0.5, reject=0.9,
                        description="natural images the CAM classifier agrees with",
                        report=dict(key="synthetic.kept_share.natural", label="synthetic images kept by the classifier, natural prompts (%)")),
    filter_balanced=dict(type="FilterSynthetic", model="train_cam", synthetic="gen_balanced", threshold=0.5, reject=0.9,
                         description="counter-bias images the CAM classifier agrees with",
                         report=dict(key="synthetic.kept_share.balanced", label="synthetic images kept by the classifier, counter-bias prompts (%)")),
    seeds_synth_natural=dict(type="Seeds", model="train_bas", data="filter_natural", scales=synthetic_scales, base_size=96,
                             description="BAS seeds of the kept natural images"),
    seeds_synth_balanced=dict(type="Seeds", model="train_bas", data="filter_balanced", scales=synthetic_scales, base_size=96,
                              description="BAS seeds of the kept counter-bias images"),
    pseudo_synth_natural=dict(type="PseudoLabels", seeds="seeds_synth_natural", threshold_from="sweep_bas", data="filter_natural",
                              crf=True, description="pseudo labels of the natural images (BAS threshold of the real images, CRF)"),
    pseudo_synth_balanced=dict(type="PseudoLabels", seeds="seeds_synth_balanced", threshold_from="sweep_bas", data="filter_balanced",
                               crf=True, description="pseudo labels of the counter-bias images (BAS threshold of the real images, CRF)"),
    train_seg_synth=dict(type="Train", config=mixed_seg_config, iters=300, labels="pseudo_labels", synthetic="filter_natural",
                         synthetic_labels="pseudo_synth_natural", ratio=synthetic_ratio, metric="mIoU",
                         description="segmenter on real + natural synthetic images"),
    train_seg_synth_balanced=dict(type="Train", config=mixed_seg_config, iters=300, labels="pseudo_labels", synthetic="filter_balanced",
                                  synthetic_labels="pseudo_synth_balanced", ratio=synthetic_ratio, metric="mIoU",
                                  description="segmenter on real + counter-bias synthetic images"),
    test_seg_synth=dict(type="Test", model="train_seg_synth", description="segmenter with natural synthetic images, tested on val",
                        report=dict(key="segmenter_synth_miou", label="segmenter with synthetic images, natural prompts (val)")),
    test_seg_synth_balanced=dict(type="Test", model="train_seg_synth_balanced",
                                 description="segmenter with counter-bias synthetic images, tested on val",
                                 report=dict(key="segmenter_synth_balanced_miou", label="segmenter with synthetic images, counter-bias prompts (val)")),
    context_seg_synth=dict(type="EvalLabels", labels="test_seg_synth", split="val", context=True,
                           description="context shares of the natural-synthetic segmenter's val predictions"),
    context_seg_synth_balanced=dict(type="EvalLabels", labels="test_seg_synth_balanced", split="val", context=True,
                                    description="context shares of the counter-bias segmenter's val predictions"),
)  # fmt: skip

_variants = dict(without="test_seg", natural="test_seg_synth", balanced="test_seg_synth_balanced")
_context = dict(without="context_seg", natural="context_seg_synth", balanced="context_seg_synth_balanced")
_names = dict(without="without synthetic images", natural="natural prompts", balanced="counter-bias prompts")
report = dict(
    compare=["test_seg", "test_seg_mars", "test_seg_synth", "test_seg_synth_balanced"],
    per_class=["sweep_bas", "sweep_cam", "sweep_fused", "eval_pseudo", "eval_debiased", "test_seg", "test_seg_mars",
               "test_seg_synth", "test_seg_synth_balanced", "test_upper"],
    context=["eval_pseudo", "eval_debiased", "context_seg", "context_seg_mars", "context_seg_synth",
             "context_seg_synth_balanced"],
    rows=[dict(key=f"synthetic.{what}.{variant}", label=f"{label} (val), {_names[variant]}", stage=stage[variant], metric=metric)
          for what, label, stage, metric in (("boat_iou", "boat IoU", _variants, "IoU.boat"),
                                             ("train_iou", "train IoU", _variants, "IoU.train"),
                                             ("water_as_boat", "water labelled boat, %", _context, "water_as_boat"),
                                             ("rails_as_train", "rails labelled train, %", _context, "rails_as_train"))
          for variant in ("without", "natural", "balanced")]
         + [dict(key=f"synthetic.prompts.{context}_given_{name}.{variant}", label=f"{name} prompts {where}, %, {_names[variant]}",
                 stage=f"plan_{variant}", metric=f"{context}_given_{name}")
            for context, name, where in (("water", "boat", "on water"), ("rails", "train", "on rails"))
            for variant in ("natural", "balanced")],
    outputs=dict(
        pseudo_labels="pseudo_labels",
        debiased_labels="debias",
        synthetic=dict(natural="filter_natural", balanced="filter_balanced"),
        synthetic_labels=dict(natural="pseudo_synth_natural", balanced="pseudo_synth_balanced"),
        val_predictions=dict(baseline="test_seg", mars="test_seg_mars", synthetic="test_seg_synth",
                             synthetic_balanced="test_seg_synth_balanced"),
    ),
)  # fmt: skip
