# The weakly supervised pipeline on the embedded shapes dataset, sized for a 2-core CPU
# (tools/run_pipeline.py). Each entry of `stages` is one stage: its type (wsss.pipeline.stages) and
# options; other stages are named by their keys. Drop a stage with `stages = dict(name=None)` in a
# config based on this one, change one with `stages = dict(name=dict(option=value))`.
#
# BAS needs a classifier that already recognises the objects (the paper starts from ImageNet weights;
# nothing is downloaded here), so the CAM classifier is trained first and both BAS and the CAM
# baseline continue from it for the same budget. BAS seeds are also fused with CAM seeds, as the BAS
# authors make their masks, and the best of the three on the labelled images becomes pseudo labels.
#
# Learning floors: a classifier below 60 val mAP or a ground-truth segmenter below 30 val mIoU did
# not learn; the pipeline stops there with a diagnosis instead of reporting numbers of failed models.
#
# MARS: dense features learnt from scratch on the training images alone (IIC, no labels) run beside
# the localizers; MARS marks the biased objects of the pseudo labels (water called boat, rails
# called train) and a second segmenter learns from those labels with its EMA teacher filling them in.
cam_config = "configs/bas/cam_shapes.py"
bas_config = "configs/bas/bas_shapes.py"
seg_config = "configs/seg/deeplabv3plus_shapes.py"
mars_seg_config = "configs/seg/deeplabv3plus_mars_shapes.py"
feature_config = "configs/features/scratch_shapes.py"
seed_scales = (1.0, 0.5, 1.5)  # the paper adds 2.0; left out to keep the demo short

stages = dict(
    data=dict(type="MakeShapes", n_train=500, n_val=100, size=96, seed=0, description="draw the shapes dataset"),
    train_cam=dict(type="Train", config=cam_config, iters=500, metric="cls/mAP",
                   floor=dict(metric="cls/mAP", min=60, hint="raise stages.train_cam.iters (more steps) or check the images"),
                   description="CAM classifier (the warm start of both localizers)",
                   report=dict(key="classifier_map", label="CAM classifier, val mAP")),
    train_bas=dict(type="Train", config=bas_config, iters=250, load_from="train_cam", metric="cls/mAP",
                   description="BAS from the CAM weights"),
    train_cam_more=dict(type="Train", config=cam_config, iters=250, load_from="train_cam", metric="cls/mAP",
                        description="CAM baseline from the same weights, same budget as BAS"),
    seeds_bas=dict(type="Seeds", model="train_bas", scales=seed_scales, base_size=96, description="multi-scale BAS seeds"),
    seeds_cam=dict(type="Seeds", model="train_cam_more", scales=seed_scales, base_size=96, description="multi-scale CAM seeds"),
    seeds_fused=dict(type="FuseSeeds", bas="seeds_bas", cam="seeds_cam", description="BAS + CAM fused seeds"),
    sweep_bas=dict(type="SweepSeeds", seeds="seeds_bas", description="threshold sweep of the BAS seeds",
                   report=dict(key="seed_miou.bas", label="BAS seeds (train, best threshold)")),
    sweep_cam=dict(type="SweepSeeds", seeds="seeds_cam", description="threshold sweep of the CAM seeds",
                   report=dict(key="seed_miou.cam", label="CAM seeds, same budget (train, best threshold)")),
    sweep_fused=dict(type="SweepSeeds", seeds="seeds_fused", description="threshold sweep of the fused seeds",
                     report=dict(key="seed_miou.fused", label="BAS + CAM fused seeds (train, best threshold)")),
    pseudo_labels=dict(type="PseudoLabels", sweeps=["sweep_bas", "sweep_cam", "sweep_fused"], crf=True,
                       description="pseudo labels: the best seeds at their threshold, dense CRF"),
    eval_pseudo=dict(type="EvalLabels", labels="pseudo_labels", context=True, description="pseudo labels against the ground truth",
                     report=dict(key="pseudo_label_miou", label="pseudo labels (train, CRF)")),
    train_features=dict(type="Train", config=feature_config, iters=300,
                        description="unsupervised dense features from scratch (IIC, images only)"),
    features=dict(type="ExtractFeatures", model="train_features", scales=(1.0, 0.5, 1.5), base_size=96,
                  description="multi-scale features of the training images"),
    debias=dict(type="Debias", config="configs/debias/mars_shapes.py", pseudo="pseudo_labels", features="features",
                description="MARS: biased objects of the pseudo labels marked 254"),
    eval_debiased=dict(type="EvalLabels", labels="debias", context=True, description="debiased labels against the ground truth",
                       report=dict(key="debiased_pseudo_label_miou", label="MARS debiased pseudo labels (train, 254 as background)")),
    train_seg=dict(type="Train", config=seg_config, iters=300, labels="pseudo_labels", metric="mIoU",
                   description="segmenter on the pseudo labels"),
    train_seg_mars=dict(type="Train", config=mars_seg_config, iters=300, labels="debias", metric="mIoU",
                        description="segmenter on the debiased labels, complemented by its EMA teacher"),
    train_upper=dict(type="Train", config=seg_config, iters=300, labels="SegmentationClass", metric="mIoU",
                     floor=dict(metric="mIoU", min=30, hint="even on ground truth the segmenter learnt little: raise "
                                "stages.train_upper.iters (and train_seg's, train_seg_mars's)"),
                     description="the same segmenter on ground-truth masks (the upper bound)"),
    test_seg=dict(type="Test", model="train_seg", description="segmenter on pseudo labels, tested on val",
                  report=dict(key="segmenter_miou", label="segmenter on pseudo labels (val)")),
    test_seg_mars=dict(type="Test", model="train_seg_mars", description="MARS segmenter, tested on val",
                       report=dict(key="segmenter_mars_miou", label="segmenter with MARS (val)")),
    context_seg=dict(type="EvalLabels", labels="test_seg", split="val", context=True,
                     description="context shares of the segmenter's val predictions"),
    context_seg_mars=dict(type="EvalLabels", labels="test_seg_mars", split="val", context=True,
                          description="context shares of the MARS segmenter's val predictions"),
    test_upper=dict(type="Test", model="train_upper", description="upper bound, tested on val",
                    report=dict(key="upper_bound_miou", label="segmenter on ground truth, upper bound (val)")),
    predict_train=dict(type="Test", model="train_seg", split="train", predict_only=True,
                       description="segmenter predictions on the training images, for the figure"),
    figure=dict(type="Figure", seeds=["seeds_bas", "seeds_cam"], heat=["debias"], labels=["pseudo_labels", "debias", "predict_train"],
                n=8, description="example images: seeds, pseudo labels, MARS scores and labels, predictions, ground truth"),
)  # fmt: skip
report = dict(
    upper_bound="test_upper",
    compare=["test_seg", "test_seg_mars"],
    per_class=[
        "sweep_bas",
        "sweep_cam",
        "sweep_fused",
        "eval_pseudo",
        "eval_debiased",
        "test_seg",
        "test_seg_mars",
        "test_upper",
    ],
    errors=["eval_pseudo", "eval_debiased", "test_seg", "test_seg_mars"],
    context=["eval_pseudo", "eval_debiased", "context_seg", "context_seg_mars"],
    outputs=dict(
        pseudo_labels="pseudo_labels",
        debiased_labels="debias",
        val_predictions=dict(baseline="test_seg", mars="test_seg_mars"),
    ),
    figure="figure",
)
jobs = 2  # stages run side by side; each starts with cores // running threads
