"""Registries for everything a config can swap: datasets, transforms, models, metrics, hooks.

Each is a child of mmengine's root registry under the ``wsss`` scope, so mmengine's Runner finds
our classes when a config sets ``default_scope = 'wsss'``.
"""

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

DATASETS = Registry(
    "dataset", parent=MMENGINE_DATASETS, scope="wsss", locations=["wsss.data.dataset", "wsss.data.cub"]
)
DATA_SAMPLERS = Registry("data sampler", parent=MMENGINE_DATA_SAMPLERS, scope="wsss", locations=["wsss.data.dataset"])
TRANSFORMS = Registry("transform", parent=MMENGINE_TRANSFORMS, scope="wsss", locations=["wsss.data.transforms"])
MODELS = Registry("model", parent=MMENGINE_MODELS, scope="wsss", locations=["wsss.models"])
METRICS = Registry("metric", parent=MMENGINE_METRICS, scope="wsss", locations=["wsss.evaluation"])
HOOKS = Registry("hook", parent=MMENGINE_HOOKS, scope="wsss", locations=["wsss.engine"])
LOOPS = Registry("loop", parent=MMENGINE_LOOPS, scope="wsss", locations=["wsss.engine"])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    "optim wrapper constructor",
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope="wsss",
    locations=["wsss.engine"],
)
FUNCTIONS = Registry("function", parent=MMENGINE_FUNCTIONS, scope="wsss", locations=["wsss.data.dataset"])
