"""Checkpoints to probability maps: loading, pre-processing, TTA, sliding window, prediction.

Importing this package does not import torch; its functions do when called.
"""

from hbens.predictors.checkpoints import LOADERS, LoadedModel, ModelSpec, detect_format, load_model
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
