"""Post-processing of masks: connected-component cleaning (and CRF on probability maps)."""

from hbens.postproc.clean import (
    CleanConfig,
    CleanStats,
    RowCleaner,
    clean_configs,
    clean_csv,
    clean_masks,
    clean_probabilities,
    clean_runs,
    fill_holes,
    keep_largest,
    remove_small,
)

__all__ = [
    "CleanConfig",
    "CleanStats",
    "RowCleaner",
    "clean_configs",
    "clean_csv",
    "clean_masks",
    "clean_probabilities",
    "clean_runs",
    "fill_holes",
    "keep_largest",
    "remove_small",
]
