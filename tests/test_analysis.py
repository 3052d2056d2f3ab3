"""Each analysis against a case with a known answer."""
import numpy as np
import pytest
import torch

from saccade_sim.analysis.population import (lifetime_sparseness, participation_ratio, population_sparseness,
                                             treves_rolls)
from saccade_sim.analysis.receptive import (_grid, fit_gabor, gabor, orientation_selectivity, orientation_tuning,
                                            response_weighted_average)
from saccade_sim.analysis.report import field_stats
from saccade_sim.analysis.similarity import label_similarity, rsa, rsa_table, similarity_matrix


def test_rsa_of_identical_representations_is_one_and_of_a_monotone_transform_too():
    x = np.random.default_rng(0).normal(size=(30, 12))
    m = similarity_matrix(x)
    assert np.allclose(np.diag(m), 1) and np.allclose(m, m.T)
    assert np.allclose(m, np.corrcoef(x))  # independent computation
    assert rsa(m, m) == pytest.approx(1.0)
    assert rsa(m, m ** 3) == pytest.approx(1.0)  # rank correlation: monotone maps keep it at 1
    names, table = rsa_table({"a": m, "b": m, "c": similarity_matrix(np.random.default_rng(1).normal(size=(30, 12)))})
    assert table[0, 1] == pytest.approx(1.0) and abs(table[0, 2]) < 0.2


def test_rsa_with_labels_is_maximal_for_a_code_of_the_labels_and_zero_for_a_shuffled_one():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 8)
    target = label_similarity(labels)
    assert rsa(target, target) == pytest.approx(1.0)
    # any RSM that ranks every same-label pair above every different-label pair reaches the same (maximal,
    # tie-limited) Spearman correlation with the binary label RSM
    separating = target + 1e-3 * rng.random(target.shape)
    code = np.eye(4)[labels] + 0.01 * rng.normal(size=(32, 4))
    assert rsa(similarity_matrix(code), target) == pytest.approx(rsa(separating + separating.T, target), abs=1e-9)
    assert abs(rsa(similarity_matrix(code), label_similarity(rng.permutation(labels)))) < 0.15


def test_sparseness_of_one_hot_and_dense_codes():
    one_hot = np.eye(10)
    assert np.allclose(treves_rolls(one_hot, 1), 0.1)
    assert np.allclose(population_sparseness(one_hot), 1.0)
    assert np.allclose(lifetime_sparseness(one_hot), 1.0)
    dense = np.ones((7, 5))
    assert np.allclose(population_sparseness(dense), 0.0) and np.allclose(lifetime_sparseness(dense), 0.0)
    r = np.random.default_rng(0).random((20, 6))  # against the formula written out with loops
    for j in range(6):
        a = r[:, j].mean() ** 2 / (r[:, j] ** 2).mean()
        assert lifetime_sparseness(r)[j] == pytest.approx((1 - a) / (1 - 1 / 20))


def test_participation_ratio_of_isotropic_and_rank_one_data():
    rng = np.random.default_rng(0)
    assert participation_ratio(rng.normal(size=(20000, 8))) == pytest.approx(8, rel=0.02)
    line = rng.normal(size=(500, 1)) * rng.normal(size=(1, 8))
    assert participation_ratio(line) == pytest.approx(1.0)
    two = np.concatenate([rng.normal(size=(20000, 2)), np.zeros((20000, 6))], 1)
    assert participation_ratio(two) == pytest.approx(2, rel=0.02)


def test_gabor_fit_recovers_a_generated_gabor_patch():
    truth = dict(amplitude=1.0, x0=7.3, y0=8.1, sigma_x=2.5, sigma_y=3.5, theta=0.7, frequency=0.15, phase=0.4,
                 offset=0.0)
    patch = gabor(_grid(16, 16), **truth).reshape(16, 16)
    noisy = patch + 0.05 * np.random.default_rng(0).normal(size=patch.shape)
    fit = fit_gabor(noisy)
    assert fit["r2"] > 0.9
    for key, tol in (("x0", 0.2), ("y0", 0.2), ("sigma_x", 0.3), ("sigma_y", 0.3), ("frequency", 0.01)):
        assert fit[key] == pytest.approx(truth[key], abs=tol), key
    # theta and (theta + pi, -phase) describe the same Gabor: compare orientations modulo pi
    assert abs(((fit["theta"] - truth["theta"]) + np.pi / 2) % np.pi - np.pi / 2) < 0.05
    assert fit_gabor(np.random.default_rng(1).normal(size=(16, 16)))["r2"] < 0.5
    assert np.isnan(fit_gabor(np.ones((3, 3)))["r2"])  # too few pixels for 9 parameters
    assert np.isnan(fit_gabor(np.zeros((8, 8)))["r2"])  # a silent unit's flat field: nothing to fit


def test_flat_fields_are_not_fitted():
    """A uniform field (a slight gradient on a constant) would be fitted by a Gabor of vanishing frequency with
    R^2 near 1: it counts as flat, like a silent one, and gets no R^2 and no OSI."""
    coords = _grid(12, 12)
    tuned = gabor(coords, 1, 5.5, 5.5, 3, 3, 0.5, 0.2, 0, 0).reshape(12, 12)
    uniform = 0.3 + 0.002 * np.arange(144).reshape(12, 12) / 144
    assert fit_gabor(uniform)["r2"] > 0.9  # what the flat rule keeps out of the statistics
    stats = field_stats(np.stack([tuned, uniform, np.zeros((12, 12))])[:, None], max_units=3)
    assert stats["r2"][0] > 0.9 and 0 < stats["osi"][0] <= 1
    assert np.isnan(stats["r2"][1:]).all() and np.isnan(stats["osi"][1:]).all()


def test_orientation_selectivity_of_gratings_gabors_and_isotropic_blobs():
    coords = _grid(16, 16)
    tuned = np.stack([gabor(coords, 1, 7.5, 7.5, 3, 3, t, 0.2, 0, 0).reshape(16, 16) for t in (0.0, 1.0, 2.0)])
    blob = gabor(coords, 1, 7.5, 7.5, 2, 2, 0, 0.0, 0, 0).reshape(1, 16, 16)
    tuning, theta = orientation_tuning(np.concatenate([tuned, blob]), n_orientations=32)
    osi = orientation_selectivity(tuning, theta)
    assert (osi[:3] > 0.5).all() and osi[3] < 0.05
    peaks = theta[tuning[:3].argmax(1)]
    assert np.allclose(peaks, [0.0, 1.0, 2.0], atol=np.pi / 32)  # the preferred orientation is the carrier's
    assert orientation_selectivity(np.array([[1.0, 0, 0, 0]]), np.arange(4) * np.pi / 4)[0] == pytest.approx(1.0)
    flat, theta = orientation_tuning(np.full((1, 8, 8), 3.0))
    assert np.isnan(orientation_selectivity(flat, theta)[0])  # no response to any zero-mean grating


def test_response_weighted_average_recovers_the_driving_pattern():
    rng = np.random.default_rng(0)
    pattern = torch.from_numpy(rng.normal(size=(1, 5, 5)))
    x = torch.from_numpy(rng.normal(size=(4000, 1, 5, 5)))
    r = torch.relu((x * pattern).flatten(1).sum(1, keepdim=True))  # a rectified linear unit
    rwa = response_weighted_average(x, r)[0]
    cos = float((rwa * pattern).sum() / (rwa.norm() * pattern.norm()))
    assert cos > 0.95
    explicit = sum(float(r[n, 0]) * x[n] for n in range(50)) / float(r[:50, 0].sum())  # independent loop
    assert torch.allclose(response_weighted_average(x[:50], r[:50])[0], explicit)
