"""Checkpoints to probability maps: loading, pre-processing, TTA, sliding window, prediction.

Importing this package does not import torch; its functions do when called.  It asks OpenMP
for passive waits first, before torch is loaded (see :func:`~hbens.predictors.model.wait_passively`).
"""

from hbens.predictors.checkpoints import LOADERS, LoadedModel, ModelSpec, detect_format, load_model
from hbens.predictors.model import wait_passively
from hbens.predictors.predict import (
    ModelSource,
    PredictItem,
    PredictOptions,
    Predictor,
    PredictStats,
    describe_predict,
    load_predictor,
    predict_folder,
    predict_image,
)

wait_passively()

__all__ = [
    "LOADERS",
    "LoadedModel",
    "ModelSource",
    "ModelSpec",
    "PredictItem",
    "PredictOptions",
    "PredictStats",
    "Predictor",
    "describe_predict",
    "detect_format",
    "load_model",
    "load_predictor",
    "predict_folder",
    "predict_image",
]
