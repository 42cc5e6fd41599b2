"""The simulation core: instrument numbers, the bulge+disk recipe, per-object determinism."""

from __future__ import annotations

import math

import galsim
import numpy as np
import pytest

from galbench.sim import get_instrument, get_recipe
from galbench.sim.recipes import galsim_deviate, object_seed, render_object
from galbench.tasks import get_task

TASK = get_task("morphometry@1")
F160W = get_instrument("hst_wfc3_f160w")


@pytest.fixture(scope="module")
def recipe():
    return get_recipe(TASK)


def test_f160w_photometry_and_psf():
    assert F160W.pixel_scale_arcsec == 0.06
    assert F160W.flux_from_mag(F160W.zero_point_ab) == pytest.approx(1.0)
    assert F160W.mag_from_flux(F160W.flux_from_mag(22.3)) == pytest.approx(22.3)
    # CANDELS F160W mosaics have a ~0.18" PSF (van der Wel+12).
    assert F160W.psf_fwhm_arcsec == pytest.approx(0.18, abs=0.01)


def test_sky_sigma_gives_five_sigma_at_the_depth():
    """Monte Carlo: a point source at the survey depth, summed in the depth aperture of many
    correlated-noise fields, has S/N ~ 5 (within the noise of the estimate)."""
    size, scale = 33, F160W.pixel_scale_arcsec
    yy, xx = np.indices((size, size)) - size // 2
    aperture = np.hypot(xx, yy) * scale <= F160W.noise.aperture_radius_arcsec
    sums = []
    rng = galsim.BaseDeviate(1234)
    noise = F160W.correlated_noise(rng)
    for _ in range(400):
        image = galsim.ImageD(size, size, scale=scale)
        image.addNoise(noise)
        sums.append(image.array[aperture].sum())
    signal = F160W.flux_from_mag(F160W.noise.depth_mag) * F160W.aperture_fraction
    snr = signal / np.std(sums)
    assert snr == pytest.approx(5.0, rel=0.15)
    # The pixel noise itself has the stated sigma.
    assert np.std(image.array) == pytest.approx(F160W.sky_sigma, rel=0.15)


def test_truth_is_drawn_from_the_task_priors(recipe):
    truths = [recipe.sample_truth(np.random.default_rng(i)) for i in range(300)]
    params = TASK.simulation.params
    for key in ("mag", "bulge_to_total", "n_bulge", "log10_r_bulge", "log10_r_disk", "q_bulge", "q_disk", "pa"):
        values = np.array([t[key] for t in truths])
        lo, hi = params[key]
        assert values.min() >= lo and values.max() <= hi, key
        assert values.max() - values.min() > 0.8 * (hi - lo), key  # spans the range
    n = np.array([t["n_bulge"] for t in truths])
    assert np.allclose(np.round(n / 0.05) * 0.05, n)  # on the 0.05 grid
    mags = np.array([t["mag"] for t in truths])
    fluxes = np.array([t["flux"] for t in truths])
    np.testing.assert_allclose(fluxes, 10 ** (-0.4 * (mags - 25.946)))


def _moments(image: np.ndarray) -> tuple[float, float, float]:
    y, x = np.indices(image.shape)
    w = np.clip(image, 0, None)
    w = w / w.sum()
    mx, my = (w * x).sum(), (w * y).sum()
    return (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum(), (w * (x - mx) * (y - my)).sum()


def test_position_angle_and_radius_conventions(recipe):
    base = dict(
        mag=20.0, flux=float(F160W.flux_from_mag(20.0)), bulge_to_total=0.0, n_bulge=2.0,
        log10_r_bulge=0.5, log10_r_disk=math.log10(6.0), q_bulge=0.5, q_disk=0.4, pa=0.0,
        dx=0.0, dy=0.0,
    )
    ixx, iyy, _ = _moments(recipe.draw_noiseless(base))
    assert ixx > 2 * iyy  # PA 0: major axis along x (columns)
    ixx, iyy, _ = _moments(recipe.draw_noiseless(dict(base, pa=90.0)))
    assert iyy > 2 * ixx  # PA 90: along y (rows)
    _, _, ixy = _moments(recipe.draw_noiseless(dict(base, pa=45.0)))
    assert ixy > 0  # counter-clockwise from +x with rows as +y
    # Radii are major-axis half-light radii: a face-on disk of r=6 px holds half its flux
    # within 6 px (PSF broadening makes it slightly less).
    face_on = recipe.draw_noiseless(dict(base, q_disk=0.999, flux=1.0))
    y, x = np.indices(face_on.shape) - 31.5
    inside = face_on[np.hypot(x, y) <= 6.0].sum() / face_on.sum()
    assert 0.42 < inside < 0.5


def test_object_depends_only_on_seed_and_index(recipe):
    seed = TASK.split("test").seed
    first = render_object(recipe, seed, 7)
    for i in (3, 11, 2):  # render others in between: no hidden state carries over
        render_object(recipe, seed, i)
    again = render_object(get_recipe(TASK), seed, 7)
    assert first.image.tobytes() == again.image.tobytes()
    assert first.truth == again.truth
    other = render_object(recipe, seed, 8)
    assert other.truth["mag"] != first.truth["mag"]
    assert first.image.dtype == np.float32 and first.image.shape == (1, 64, 64)


def test_seed_derivation_matches_spawn():
    children = np.random.SeedSequence(99).spawn(5)
    assert object_seed(99, 3).generate_state(4).tolist() == children[3].generate_state(4).tolist()
    assert galsim_deviate(object_seed(99, 3)).raw() == galsim_deviate(object_seed(99, 3)).raw()


def test_noise_matches_the_instrument(recipe):
    """Far from a small faint galaxy, pixels scatter with the sky sigma; the catalog S/N follows
    the matched-filter formula."""
    truth = recipe.sample_truth(np.random.default_rng(5))
    truth.update(mag=24.0, flux=float(F160W.flux_from_mag(24.0)), log10_r_bulge=0.2, log10_r_disk=0.2)
    noiseless = recipe.draw_noiseless(truth)
    noisy = recipe.add_noise(noiseless, galsim.BaseDeviate(7))
    corner = (noisy - noiseless)[:16, :16]
    assert np.std(corner) == pytest.approx(F160W.sky_sigma, rel=0.25)
    var = F160W.sky_sigma**2 * F160W.correlation_gain + noiseless / F160W.noise.exposure_time_s
    assert recipe.snr(noiseless) == pytest.approx(np.sqrt(np.sum(noiseless**2 / var)))
