"""Checkpoints to probability maps: loading, pre-processing, TTA, sliding window, prediction.

Importing this package does not import torch; its functions do when called.
"""

from hbens.predictors.checkpoints import LOADERS, LoadedModel, ModelSpec, detect_format, load_model
from hbens.predictors.predict import PredictOptions, Predictor, PredictSummary, predict_folder

__all__ = [
    "LOADERS",
    "LoadedModel",
    "ModelSpec",
    "PredictOptions",
    "PredictSummary",
    "Predictor",
    "detect_format",
    "load_model",
    "predict_folder",
]
