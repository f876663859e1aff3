"""Models: localizers (BAS, CAM), segmenters, their losses, and the shared data preprocessor.

Importing this package registers every model, loss and the EMA-teacher hook.
"""

from wsss.models.bas import BAS
from wsss.models.bas_wsol import BASWSOL
from wsss.models.cam import CAM
from wsss.models.data_preprocessor import SegDataPreprocessor
from wsss.models.ema import EMATeacher, EMATeacherHook
from wsss.models.losses import SegCrossEntropy
from wsss.models.segmenter import Segmenter

__all__ = [
    "BAS",
    "BASWSOL",
    "CAM",
    "EMATeacher",
    "EMATeacherHook",
    "SegCrossEntropy",
    "SegDataPreprocessor",
    "Segmenter",
]
