"""Registries for everything a config can swap: datasets, transforms, models, metrics, hooks, ...

Each is a child of mmengine's root registry under the ``wsss`` scope, so mmengine's Runner finds
our classes (and mmengine's own, through the parent) when a config sets ``default_scope = 'wsss'``.
Every root registry the Runner consults has a child here, so no lookup falls back with a warning.
"""

from mmengine import registry as mm
from mmengine.registry import Registry

RUNNERS = Registry("runner", parent=mm.RUNNERS, scope="wsss")
RUNNER_CONSTRUCTORS = Registry("runner constructor", parent=mm.RUNNER_CONSTRUCTORS, scope="wsss")
LOOPS = Registry("loop", parent=mm.LOOPS, scope="wsss")
HOOKS = Registry(
    "hook",
    parent=mm.HOOKS,
    scope="wsss",
    locations=["wsss.nn.ema", "wsss.data.dataset", "wsss.synth.flow.model"],
)
LOG_PROCESSORS = Registry("log processor", parent=mm.LOG_PROCESSORS, scope="wsss")
DATASETS = Registry(
    "dataset",
    parent=mm.DATASETS,
    scope="wsss",
    locations=[
        "wsss.data.dataset",
        "wsss.data.cub",
        "wsss.data.mixed",
        "wsss.data.captioned",
        "wsss.features.knn",
        "wsss.synth.flow.pairs",
    ],
)
DATA_SAMPLERS = Registry("data sampler", parent=mm.DATA_SAMPLERS, scope="wsss", locations=["wsss.data.mixed"])
TRANSFORMS = Registry("transform", parent=mm.TRANSFORMS, scope="wsss", locations=["wsss.data.transforms"])
FUNCTIONS = Registry("function", parent=mm.FUNCTIONS, scope="wsss", locations=["wsss.data.dataset"])
MODELS = Registry(
    "model",
    parent=mm.MODELS,
    scope="wsss",
    locations=[
        "wsss.nn.preprocessor",
        "wsss.localize.bas",
        "wsss.localize.bas_wsol",
        "wsss.localize.cam",
        "wsss.segment.model",
        "wsss.segment.losses",
        "wsss.features.scratch",
        "wsss.features.vit",
        "wsss.features.stego",
        "wsss.synth.flow.model",
    ],
)
MODEL_WRAPPERS = Registry("model wrapper", parent=mm.MODEL_WRAPPERS, scope="wsss")
WEIGHT_INITIALIZERS = Registry("weight initializer", parent=mm.WEIGHT_INITIALIZERS, scope="wsss")
OPTIMIZERS = Registry("optimizer", parent=mm.OPTIMIZERS, scope="wsss")
OPTIM_WRAPPERS = Registry("optim wrapper", parent=mm.OPTIM_WRAPPERS, scope="wsss")
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    "optim wrapper constructor", parent=mm.OPTIM_WRAPPER_CONSTRUCTORS, scope="wsss"
)
PARAM_SCHEDULERS = Registry("parameter scheduler", parent=mm.PARAM_SCHEDULERS, scope="wsss")
METRICS = Registry("metric", parent=mm.METRICS, scope="wsss", locations=["wsss.evaluation.metrics"])
EVALUATOR = Registry("evaluator", parent=mm.EVALUATOR, scope="wsss")
VISUALIZERS = Registry("visualizer", parent=mm.VISUALIZERS, scope="wsss")
VISBACKENDS = Registry("vis backend", parent=mm.VISBACKENDS, scope="wsss")
