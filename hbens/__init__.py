"""hbens: ensembles and post-processing for hand-bone X-ray segmentation submissions."""

__version__ = "0.1.0"
