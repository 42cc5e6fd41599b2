"""Image metrics (galbench.metrics.images): hand-computed PSNR, flux error, Dice/IoU and clump
matching; the data range taken from the truth, the PSNR cap, 8-connected clumps, optimal
one-to-one matching against brute force and greedy matching; cross-checks against skimage and
sklearn; weights as duplication (bootstrap) and as a 0/1 stratum; registration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from sklearn.metrics import f1_score, jaccard_score

from galbench.metrics import METRICS
from galbench.metrics.images import (
    PSNR_MAX,
    clump_counts,
    clump_f1_from_counts,
    completeness_from_counts,
    data_range,
    detection_from_counts,
    dice_from_counts,
    flux_error,
    iou_from_counts,
    match_clumps,
    pixel_counts,
    predicted_clumps,
    psnr,
    purity_from_counts,
    ssim,
)


def blends(n=3, s=2, c=1, size=16, seed=0):
    """Positive true isolated images [n, s, c, size, size] and noisy predictions of them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    true = np.empty((n, s, c, size, size))
    for i, j, b in itertools.product(range(n), range(s), range(c)):
        x0, y0 = rng.uniform(3, size - 3, 2)
        width = rng.uniform(1.5, 3.0)
        true[i, j, b] = rng.uniform(1, 10) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / width**2)
    pred = true + rng.normal(0, 0.1, true.shape)
    return true, pred


# ------------------------------------------------------------------------------------------
# Deblending: PSNR


def test_psnr_hand_computed():
    true = np.zeros((1, 1, 1, 4, 4))
    true[0, 0, 0, 1, 2] = 2.0  # R = 2
    pred = true + 0.1  # MSE = 0.01
    assert psnr(true, pred)[0, 0] == pytest.approx(10 * math.log10(4 / 0.01))  # 26.0206 dB
    assert psnr(true, pred)[0, 0] == pytest.approx(26.020599913279625)
    # Error in one pixel of 16, of size 1: MSE = 1/16, PSNR = 10 log10(4 * 16) = 18.06 dB.
    pred = true.copy()
    pred[0, 0, 0, 3, 3] = -1.0
    assert psnr(true, pred)[0, 0] == pytest.approx(10 * math.log10(64.0))


def test_psnr_mse_over_bands_and_range_shared_by_bands():
    true = np.zeros((1, 1, 2, 2, 2))
    true[0, 0, 0] = 1.0
    true[0, 0, 1] = 4.0  # R = 4 for both bands
    pred = true.copy()
    pred[0, 0, 0, 0, 0] += 2.0  # squared error 4 in one of 8 values: MSE = 0.5
    assert psnr(true, pred)[0, 0] == pytest.approx(10 * math.log10(16 / 0.5))


def test_psnr_range_from_the_truth_not_from_each_image():
    """Twice the true flux is a real error (BTK normalises each image by its own maximum, which
    would give pred / pred.max() == true / true.max(): a perfect score)."""
    true = np.zeros((1, 1, 1, 3, 3))
    true[0, 0, 0, 1, 1] = 1.0
    true[0, 0, 0, 1, 0] = 0.5
    pred = 2 * true
    # R = 1, MSE = (1 + 0.25) / 9
    assert psnr(true, pred)[0, 0] == pytest.approx(10 * math.log10(9 / 1.25))
    assert psnr(true, pred)[0, 0] == pytest.approx(8.573324964312685)
    # Swapping the roles changes R (2 instead of 1): the range comes from the first argument.
    assert psnr(pred, true)[0, 0] == pytest.approx(10 * math.log10(4 * 9 / 1.25))


def test_psnr_capped_at_100_db():
    true, _ = blends(n=2, s=2)
    assert np.array_equal(psnr(true, true), np.full((2, 2), 100.0))
    assert PSNR_MAX == 100.0
    r = data_range(true)
    # An MSE below R^2 1e-10 is floored: still 100 dB.
    tiny = true + 1e-6 * r[:, :, None, None, None]  # MSE = R^2 1e-12
    assert np.allclose(psnr(true, tiny), 100.0)
    # Just above the floor, the formula applies: MSE = R^2 1e-8 -> 80 dB.
    small = true + 1e-4 * r[:, :, None, None, None]
    assert np.allclose(psnr(true, small), 80.0)


def test_psnr_matches_skimage():
    true, pred = blends(n=3, s=2, c=3, size=12, seed=1)
    got = psnr(true, pred)
    assert got.shape == (3, 2) and got.dtype == np.float64
    for n, s in itertools.product(range(3), range(2)):
        expected = peak_signal_noise_ratio(true[n, s], pred[n, s], data_range=true[n, s].max())
        assert got[n, s] == pytest.approx(expected, abs=1e-10)


def test_data_range_must_be_positive_and_names_the_source():
    true, pred = blends(n=3, s=2)
    true[1, 0] = 0.0
    with pytest.raises(ValueError, match=r"blend 1, source 0"):
        psnr(true, pred)
    with pytest.raises(ValueError, match=r"blend 1, source 0"):
        ssim(true, pred)
    true[1, 0] = -1.0
    true[2, 1] = -0.5
    with pytest.raises(ValueError, match=r"blend 1, source 0 \(2 such sources\)"):
        data_range(true)


def test_deblending_input_validation():
    true, pred = blends(n=2, s=2)
    with pytest.raises(ValueError, match="shape"):
        psnr(true, pred[:, :1])
    with pytest.raises(ValueError, match=r"\[N, S, C, H, W\]"):
        psnr(true[0], pred[0])
    bad = pred.copy()
    bad[1, 1, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="blend 1, source 1"):
        flux_error(true, bad)


# ------------------------------------------------------------------------------------------
# Deblending: SSIM


@pytest.mark.parametrize("bands", [1, 3])
def test_ssim_matches_skimage_wang_settings(bands):
    true, pred = blends(n=2, s=2, c=bands, size=24, seed=2)
    got = ssim(true, pred)
    assert got.shape == (2, 2) and got.dtype == np.float64
    for n, s in itertools.product(range(2), range(2)):
        kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        a, b = true[n, s], pred[n, s]
        if bands == 1:
            expected = structural_similarity(a[0], b[0], data_range=a.max(), **kw)
        else:
            expected = structural_similarity(a, b, data_range=a.max(), channel_axis=0, **kw)
        assert got[n, s] == pytest.approx(expected, abs=1e-12)
    assert ((got > 0.3) & (got < 0.99)).all()


def test_ssim_values_and_range_from_the_truth():
    true, pred = blends(n=1, s=2, size=16, seed=3)
    assert np.allclose(ssim(true, true), 1.0, atol=1e-12)
    # Not the sample covariance, not a data range from the prediction: both change the value.
    a, b = true[0, 0, 0], pred[0, 0, 0]
    wang = ssim(true, pred)[0, 0]
    sample = structural_similarity(
        a, b, data_range=a.max(), gaussian_weights=True, sigma=1.5, use_sample_covariance=True
    )
    pred_range = structural_similarity(
        a,
        b,
        data_range=b.max() - b.min(),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert abs(wang - sample) > 1e-5 and abs(wang - pred_range) > 1e-5
    # A prediction at twice the flux is structurally identical but scores below 1.
    assert ssim(true, 2 * true)[0, 0] < 0.99


def test_ssim_float32_is_computed_in_float64():
    true, pred = blends(n=1, s=2, size=16, seed=4)
    t32, p32 = true.astype(np.float32), pred.astype(np.float32)
    expected = ssim(t32.astype(np.float64), p32.astype(np.float64))
    assert np.array_equal(ssim(t32, p32), expected)


def test_ssim_needs_the_11_pixel_window():
    true, pred = blends(n=1, s=1, size=10)
    with pytest.raises(ValueError, match="at least 11 x 11"):
        ssim(true, pred)


# ------------------------------------------------------------------------------------------
# Deblending: flux error


def test_flux_error_hand_computed():
    true = np.zeros((1, 3, 2, 2, 2))
    true[0, :, 0, 0, 0] = 6.0
    true[0, :, 1, 1, 1] = 4.0  # total flux 10 in each source, over both bands
    pred = true.copy()
    pred[0, 0, 1, 0, 1] += 2.0  # 12: +20%
    pred[0, 1, 0, 0, 0] -= 3.0  # 7: -30%
    pred[0, 2] *= 0.5
    pred[0, 2, 0, 0, 0] += 5.0  # 3 + 2 + 5 = 10: no error, though the light moved
    assert np.allclose(flux_error(true, pred), [[0.2, -0.3, 0.0]])


def test_flux_error_needs_positive_true_flux():
    true, pred = blends(n=2, s=2)
    true[0, 1] = 0.0
    with pytest.raises(ValueError, match="blend 0, source 1"):
        flux_error(true, pred)


# ------------------------------------------------------------------------------------------
# Clump segmentation: pixels


def tiny_masks():
    """Two 3x3 images: image 0 has T=3, P=2, I=1 (one predicted pixel exactly at 0.5), image 1
    has T=1, P=3, I=1."""
    mask = np.zeros((2, 1, 3, 3), dtype=bool)
    prob = np.zeros((2, 1, 3, 3))
    mask[0, 0, 0, :] = True
    prob[0, 0, 0, 0] = 0.5
    prob[0, 0, 2, 2] = 0.9
    prob[0, 0, 1, 1] = 0.49
    mask[1, 0, 1, 1] = True
    prob[1, 0, 1, :] = [0.6, 0.7, 1.0]
    return mask, prob


def test_pixel_counts_and_dice_iou_hand_computed():
    mask, prob = tiny_masks()
    counts = pixel_counts(mask, prob)
    assert counts["intersection"].tolist() == [1, 1]
    assert counts["true"].tolist() == [3, 1]
    assert counts["predicted"].tolist() == [2, 3]
    assert all(v.dtype == np.int64 for v in counts.values())
    # Micro average: I = 2, T = 4, P = 5.
    assert dice_from_counts(counts) == pytest.approx(4 / 9)
    assert iou_from_counts(counts) == pytest.approx(2 / 7)
    assert np.ndim(dice_from_counts(counts)) == 0
    # Not the mean of per-image Dice (2/5 and 2/4).
    assert dice_from_counts(counts) != pytest.approx(0.45)
    # A higher threshold drops the 0.5 and 0.6 pixels: I = 1, T = 4, P = 3.
    counts = pixel_counts(mask, prob, threshold=0.65)
    assert dice_from_counts(counts) == pytest.approx(2 / 7)
    assert iou_from_counts(counts) == pytest.approx(1 / 6)


def test_dice_iou_nan_without_any_pixel_and_numeric_masks():
    empty = pixel_counts(np.zeros((2, 1, 4, 4)), np.full((2, 1, 4, 4), 0.2))
    assert math.isnan(dice_from_counts(empty)) and math.isnan(iou_from_counts(empty))
    # Empty images add nothing to the micro average.
    mask, prob = tiny_masks()
    both = pixel_counts(
        np.concatenate([mask.astype(np.uint8), np.zeros((2, 1, 3, 3), np.uint8)]),
        np.concatenate([prob, np.zeros((2, 1, 3, 3))]),
    )
    assert dice_from_counts(both) == pytest.approx(4 / 9)
    # A perfect prediction.
    perfect = pixel_counts(mask, mask.astype(float))
    assert dice_from_counts(perfect) == 1.0 and iou_from_counts(perfect) == 1.0


def test_dice_iou_match_sklearn_on_flattened_pixels():
    rng = np.random.default_rng(5)
    mask = rng.random((6, 1, 9, 11)) < 0.3
    prob = np.clip(0.6 * mask + rng.random(mask.shape) * 0.7, 0, 1)
    counts = pixel_counts(mask, prob)
    y_true, y_pred = mask.ravel(), (prob >= 0.5).ravel()
    assert 0.3 < dice_from_counts(counts) < 0.95
    assert dice_from_counts(counts) == pytest.approx(f1_score(y_true, y_pred), abs=1e-12)
    assert iou_from_counts(counts) == pytest.approx(jaccard_score(y_true, y_pred), abs=1e-12)


def test_pixel_input_validation():
    mask, prob = tiny_masks()
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        pixel_counts(mask, prob * 1.5)
    bad = prob.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        pixel_counts(mask, bad)
    with pytest.raises(ValueError, match="binary"):
        pixel_counts(mask * 2.0, prob)
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        pixel_counts(mask[:, 0], prob[:, 0])
    with pytest.raises(ValueError, match="shape"):
        pixel_counts(mask[:1], prob)
    with pytest.raises(ValueError, match="threshold"):
        pixel_counts(mask, prob, threshold=0.0)


# ------------------------------------------------------------------------------------------
# Clump segmentation: predicted clumps


def test_predicted_clumps_weighted_centroid_and_order():
    prob = np.zeros((1, 1, 6, 7))
    prob[0, 0, 1, 1] = 0.6
    prob[0, 0, 1, 2] = 1.0
    prob[0, 0, 2, 2] = 0.4  # below threshold: not part of the clump, no weight
    prob[0, 0, 4, 5] = 0.8
    prob[0, 0, 5, 5] = 0.8
    (xy,) = predicted_clumps(prob)
    # x = (1 * 0.6 + 2 * 1.0) / 1.6, y = 1; second clump at x = 5, y = 4.5.
    assert xy.dtype == np.float64
    assert np.allclose(xy, [[1.625, 1.0], [5.0, 4.5]])


def test_diagonal_touching_components_merge_with_8_connectivity():
    prob = np.zeros((1, 1, 4, 4))
    prob[0, 0, 0, 0] = 1.0
    prob[0, 0, 1, 1] = 1.0
    prob[0, 0, 2, 2] = 0.5
    (eight,) = predicted_clumps(prob)
    assert np.allclose(eight, [[0.8, 0.8]])  # (0 * 1 + 1 * 1 + 2 * 0.5) / 2.5
    (four,) = predicted_clumps(prob, connectivity=1)
    assert np.allclose(four, [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]])


def test_predicted_clumps_per_image_including_empty_ones():
    prob = np.zeros((4, 1, 5, 5))
    prob[0, 0, 0, 4] = 0.9  # x = 4, y = 0
    prob[2, 0, 3, 1] = 0.7
    prob[2, 0, 0, 0] = 0.7
    out = predicted_clumps(prob)
    assert len(out) == 4
    assert np.allclose(out[0], [[4.0, 0.0]])
    assert out[1].shape == (0, 2) and out[3].shape == (0, 2)
    assert np.allclose(out[2], [[0.0, 0.0], [1.0, 3.0]])  # raster order of first pixels
    # Clumps never join across images, even at the same position.
    prob[1, 0, 0, 4] = 0.9
    assert [len(a) for a in predicted_clumps(prob)] == [1, 1, 2, 0]
    assert predicted_clumps(np.zeros((0, 1, 5, 5))) == []


# ------------------------------------------------------------------------------------------
# Clump segmentation: matching


def brute_force_matching(true_xy, pred_xy, radius):
    """(most pairs, least total distance) over every one-to-one matching within the radius."""
    t, p = len(true_xy), len(pred_xy)
    d = np.hypot(*(true_xy[:, None, :] - pred_xy[None, :, :]).transpose(2, 0, 1))
    best = (0, 0.0)
    for k in range(1, min(t, p) + 1):
        for rows in itertools.combinations(range(t), k):
            for cols in itertools.permutations(range(p), k):
                dist = [d[r, c] for r, c in zip(rows, cols)]
                if max(dist) <= radius and (k, -sum(dist)) > (best[0], -best[1]):
                    best = (k, sum(dist))
    return best


def greedy_matching(true_xy, pred_xy, radius):
    """Closest pair first, each clump used once: the common but suboptimal matching."""
    d = np.hypot(*(true_xy[:, None, :] - pred_xy[None, :, :]).transpose(2, 0, 1))
    used_t, used_p, n = set(), set(), 0
    for flat in np.argsort(d, axis=None):
        r, c = np.unravel_index(flat, d.shape)
        if d[r, c] <= radius and r not in used_t and c not in used_p:
            used_t.add(r)
            used_p.add(c)
            n += 1
    return n


def test_two_predictions_near_one_true_clump_are_one_tp_and_one_fp():
    tp, fp, fn, pairs = match_clumps([[5.0, 5.0]], [[5.5, 5.0], [5.0, 4.2]], radius=1.0)
    assert (tp, fp, fn) == (1, 1, 0)
    assert pairs.tolist() == [[0, 0]]  # the closer one (0.5 < 0.8)


def test_near_misses_and_exactly_at_the_radius():
    true = np.array([[0.0, 0.0]])
    assert match_clumps(true, [[2.999, 0.0]], 3.0)[:3] == (1, 0, 0)
    assert match_clumps(true, [[3.001, 0.0]], 3.0)[:3] == (0, 1, 1)
    assert match_clumps(true, [[3.0, 0.0]], 3.0)[:3] == (1, 0, 0)
    assert match_clumps(true, [[3.0, 4.0]], 5.0)[:3] == (1, 0, 0)  # d = 5 exactly
    assert match_clumps(true, [[0.0, 0.0]], 0.0)[:3] == (1, 0, 0)


def test_optimal_matching_beats_greedy():
    true = np.array([[0.0, 0.0], [1.5, 0.0]])
    pred = np.array([[0.5, 0.0], [-0.8, 0.0]])
    # Greedy pairs true 0 with pred 0 (d = 0.5), leaving true 1 without a partner.
    assert greedy_matching(true, pred, 1.0) == 1
    tp, fp, fn, pairs = match_clumps(true, pred, 1.0)
    assert (tp, fp, fn) == (2, 0, 0)
    assert pairs.tolist() == [[0, 1], [1, 0]]


def test_matching_minimises_total_distance_among_maximal_matchings():
    true = np.array([[0.0, 0.0], [1.0, 0.0]])
    pred = np.array([[1.1, 0.0], [0.1, 0.0]])
    tp, fp, fn, pairs = match_clumps(true, pred, 2.0)
    assert (tp, fp, fn) == (2, 0, 0)
    assert pairs.tolist() == [[0, 1], [1, 0]]  # total 0.2, not 1.1 + 0.9


def test_matching_agrees_with_brute_force():
    rng = np.random.default_rng(6)
    for _ in range(150):
        t, p = rng.integers(0, 5, 2)
        true_xy, pred_xy = rng.uniform(0, 4, (t, 2)), rng.uniform(0, 4, (p, 2))
        radius = rng.uniform(0.3, 2.0)
        tp, fp, fn, pairs = match_clumps(true_xy, pred_xy, radius)
        k, total = brute_force_matching(true_xy, pred_xy, radius)
        assert (tp, fp, fn) == (k, p - k, t - k)
        d = np.hypot(*(true_xy[pairs[:, 0]] - pred_xy[pairs[:, 1]]).T)
        assert (d <= radius).all() and d.sum() == pytest.approx(total, abs=1e-9)
        assert len(set(pairs[:, 0])) == tp and len(set(pairs[:, 1])) == tp


def test_matching_of_empty_images():
    none = np.empty((0, 2))
    some = np.array([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]])
    tp, fp, fn, pairs = match_clumps(none, none, 1.0)
    assert (tp, fp, fn) == (0, 0, 0) and pairs.shape == (0, 2)
    assert match_clumps(some, none, 1.0)[:3] == (0, 0, 3)
    assert match_clumps(none, some, 1.0)[:3] == (0, 3, 0)
    assert match_clumps([], some[:2], 1.0)[:3] == (0, 2, 0)
    # Clumps present on both sides but none within the radius.
    assert match_clumps(some[:1], some[1:], 1.0)[:3] == (0, 2, 1)


def test_matching_input_validation():
    with pytest.raises(ValueError, match=r"\[k, 2\]"):
        match_clumps(np.zeros((2, 3)), np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="radius"):
        match_clumps(np.zeros((1, 2)), np.zeros((1, 2)), -1.0)
    with pytest.raises(ValueError, match="image 1"):
        clump_counts([np.zeros((1, 2)), np.zeros((1, 3))], [np.zeros((0, 2))] * 2, 1.0)
    with pytest.raises(ValueError, match="2 images of true clumps but 1"):
        clump_counts([np.zeros((1, 2))] * 2, [np.zeros((0, 2))], 1.0)


# ------------------------------------------------------------------------------------------
# Clump segmentation: detection metrics


def test_detection_hand_computed():
    counts = {"tp": np.array([1, 0, 2]), "fp": np.array([1, 0, 0]), "fn": np.array([0, 2, 1])}
    # TP = 3, FP = 1, FN = 3.
    out = detection_from_counts(counts)
    assert out["completeness"] == pytest.approx(0.5)
    assert out["purity"] == pytest.approx(0.75)
    assert out["f1"] == pytest.approx(0.6)
    assert clump_f1_from_counts(counts) == pytest.approx(0.6)


def test_detection_nan_when_undefined():
    zero = np.zeros(2, dtype=np.int64)
    truth_only = {"tp": zero, "fp": zero, "fn": np.array([1, 2])}
    preds_only = {"tp": zero, "fp": np.array([0, 3]), "fn": zero}
    nothing = {"tp": zero, "fp": zero, "fn": zero}
    assert completeness_from_counts(truth_only) == 0.0
    assert math.isnan(purity_from_counts(truth_only))
    assert clump_f1_from_counts(truth_only) == 0.0
    assert math.isnan(completeness_from_counts(preds_only))
    assert purity_from_counts(preds_only) == 0.0
    assert all(math.isnan(v) for v in detection_from_counts(nothing).values())


def test_clump_counts_end_to_end():
    prob = np.zeros((3, 1, 12, 12))
    prob[0, 0, 2, 2:4] = 0.9  # clump at (2.5, 2)
    prob[0, 0, 8, 8] = 0.9  # a spurious clump
    prob[1, 0, 5, 5] = 0.8
    prob[1, 0, 6, 6] = 0.8  # diagonal: one clump at (5.5, 5.5), near both true clumps
    true_xy = [np.array([[2.0, 2.0]]), np.array([[5.0, 5.0], [6.0, 6.0]]), np.empty((0, 2))]
    counts = clump_counts(true_xy, predicted_clumps(prob), radius=1.0)
    assert counts["tp"].tolist() == [1, 1, 0]
    assert counts["fp"].tolist() == [1, 0, 0]
    assert counts["fn"].tolist() == [0, 1, 0]
    assert all(v.dtype == np.int64 for v in counts.values())
    out = detection_from_counts(counts)
    assert (out["completeness"], out["purity"], out["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))


# ------------------------------------------------------------------------------------------
# Weights: bootstrap resamples as duplication, strata as 0/1 masks


def random_segmentation(n=8, seed=7):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, 1, 10, 10)) < 0.25
    prob = np.clip(0.5 * mask + 0.6 * rng.random(mask.shape), 0, 1)
    true_xy = [rng.uniform(0, 10, (rng.integers(0, 4), 2)) for _ in range(n)]
    # Each true clump found with probability 0.7, moved by up to 2 px in x and y (radius 2.5),
    # plus 0-2 spurious clumps.
    pred_xy = [
        np.concatenate(
            [
                (xy + rng.uniform(-2, 2, xy.shape))[rng.random(len(xy)) < 0.7],
                rng.uniform(0, 10, (rng.integers(0, 3), 2)),
            ]
        )
        for xy in true_xy
    ]
    return mask, prob, true_xy, pred_xy


def all_metrics(mask, prob, true_xy, pred_xy, weights=None):
    pix = pixel_counts(mask, prob)
    det = detection_from_counts(clump_counts(true_xy, pred_xy, 2.5), weights)
    return {"dice": dice_from_counts(pix, weights), "iou": iou_from_counts(pix, weights), **det}


def test_bootstrap_weights_equal_metrics_on_duplicated_images():
    mask, prob, true_xy, pred_xy = random_segmentation()
    n = len(mask)
    rng = np.random.default_rng(8)
    indices = rng.integers(0, n, (5, n))
    weights = np.stack([np.bincount(row, minlength=n) for row in indices])
    batched = all_metrics(mask, prob, true_xy, pred_xy, weights)
    for b, row in enumerate(indices):
        expected = all_metrics(
            mask[row], prob[row], [true_xy[i] for i in row], [pred_xy[i] for i in row]
        )
        for name, value in batched.items():
            assert value.shape == (5,)
            assert value[b] == pytest.approx(expected[name], abs=1e-12), name
    # The resamples differ from each other (so the comparison is not trivially constant).
    assert np.ptp(batched["dice"]) > 0 and np.ptp(batched["f1"]) > 0


def test_stratum_mask_equals_metrics_on_the_subset():
    mask, prob, true_xy, pred_xy = random_segmentation(seed=9)
    stratum = np.array([1, 0, 0, 1, 1, 0, 1, 0], dtype=bool)
    keep = np.flatnonzero(stratum)
    got = all_metrics(mask, prob, true_xy, pred_xy, stratum)
    expected = all_metrics(
        mask[keep], prob[keep], [true_xy[i] for i in keep], [pred_xy[i] for i in keep]
    )
    whole = all_metrics(mask, prob, true_xy, pred_xy)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], abs=1e-12), name
    assert got["dice"] != pytest.approx(whole["dice"])
    # An empty stratum is undefined, not 0.
    assert all(
        math.isnan(v) for v in all_metrics(mask, prob, true_xy, pred_xy, np.zeros(8)).values()
    )


def test_weights_validation():
    counts = pixel_counts(*tiny_masks())
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        dice_from_counts(counts, np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        iou_from_counts(counts, np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="lack"):
        completeness_from_counts(counts)


# ------------------------------------------------------------------------------------------
# Registration


@pytest.mark.parametrize(
    "name, direction, ideal, fn",
    [
        ("psnr", "higher", None, psnr),
        ("ssim", "higher", None, ssim),
        ("flux_error", "ideal", 0.0, flux_error),
        ("abs_flux_error", "lower", None, None),
        ("dice", "higher", None, dice_from_counts),
        ("iou", "higher", None, iou_from_counts),
        ("clump_f1", "higher", None, clump_f1_from_counts),
        ("completeness", "higher", None, completeness_from_counts),
        ("purity", "higher", None, purity_from_counts),
    ],
)
def test_registered_with_direction(name, direction, ideal, fn):
    info = METRICS.get(name)
    assert (info.direction, info.ideal, info.fn) == (direction, ideal, fn)
    assert info.description
