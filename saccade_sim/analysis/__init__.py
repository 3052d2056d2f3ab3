"""Analyses of a network's representations: linear probes, receptive fields (Gabor fit, orientation
selectivity), representational similarity, sparseness and dimensionality; ``report.analyze`` writes them all."""
from .population import lifetime_sparseness, participation_ratio, population_sparseness, sparseness, treves_rolls
from .probe import grid_features, ridge_probe
from .receptive import (fit_gabor, gabor, orientation_selectivity, orientation_tuning,
                        response_weighted_average)
from .similarity import label_similarity, rsa, rsa_table, similarity_matrix

__all__ = ["grid_features", "ridge_probe", "fit_gabor", "gabor", "orientation_selectivity", "orientation_tuning",
           "response_weighted_average", "label_similarity", "rsa", "rsa_table", "similarity_matrix",
           "lifetime_sparseness", "population_sparseness", "sparseness", "treves_rolls", "participation_ratio"]
