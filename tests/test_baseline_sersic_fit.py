"""The classical morphometry baseline (baselines/morphometry-sersic-fit): its Fourier renderer
against GalSim, parameter recovery on high-S/N simulations, and the submission contract."""

from __future__ import annotations

import sys
from pathlib import Path

import galsim
import numpy as np
import pytest

from galbench import get_task
from galbench.runner import load_model
from galbench.scoring.submission import load_submission
from galbench.sim.bulge_disk import BulgeDiskRecipe

ROOT = Path(__file__).resolve().parents[1] / "baselines" / "morphometry-sersic-fit"
TASK = "morphometry@1"


@pytest.fixture(scope="module")
def recipe() -> BulgeDiskRecipe:
    return BulgeDiskRecipe(get_task(TASK))


@pytest.fixture(scope="module")
def fitter():
    """The entry point built the way the harness builds it (galbench.runner.load_model)."""
    submission = load_submission(ROOT)
    model = load_model(submission, submission.entry(TASK))
    model.workers = 1  # the module's tests fit a handful of stamps; no pool unless asked
    yield model
    model.close()


def truth(recipe: BulgeDiskRecipe, **params: float) -> dict[str, float]:
    params["flux"] = float(recipe.instrument.flux_from_mag(params["mag"]))
    return params


def stamp_centre(t: dict[str, float]) -> tuple[float, float]:
    # GalSim centres a 64x64 image on its true centre, 31.5 in 0-based array coordinates.
    return 31.5 + t["dx"], 31.5 + t["dy"]


# -- (a) renderer ------------------------------------------------------------------------------

RENDER_CASES = {
    # A small, cuspy de Vaucouleurs bulge (r_b = 1.6 px, below the PSF FWHM of 3 px) in a disk.
    "small_n4_bulge": dict(mag=20.0, bulge_to_total=0.5, n_bulge=4.0, log10_r_bulge=0.2,
                           log10_r_disk=0.8, q_bulge=0.3, q_disk=0.6, pa=30.0, dx=0.2, dy=-0.4),
    # The same bulge flattened to q = 0.05: 0.08 px wide, only pixel integration resolves it.
    "needle_n4_bulge": dict(mag=20.0, bulge_to_total=1.0, n_bulge=4.0, log10_r_bulge=0.2,
                            log10_r_disk=0.8, q_bulge=0.05, q_disk=0.6, pa=100.0, dx=-0.5,
                            dy=0.5),
    # Largest radii of the prior: tests the wrap-around of the periodic Fourier grid.
    "large_disk": dict(mag=20.0, bulge_to_total=0.3, n_bulge=2.5, log10_r_bulge=1.3,
                       log10_r_disk=1.5, q_bulge=0.9, q_disk=0.2, pa=170.0, dx=0.0, dy=0.1),
}


@pytest.mark.parametrize("case", sorted(RENDER_CASES))
def test_renderer_matches_galsim(case, recipe, fitter):
    t = truth(recipe, **RENDER_CASES[case])
    galsim_image = recipe.draw_noiseless(t)
    cx, cy = stamp_centre(t)
    ours = fitter.renderer.render(
        **{k: t[k] for k in ("flux", "bulge_to_total", "n_bulge", "log10_r_bulge",
                             "log10_r_disk", "q_bulge", "q_disk", "pa")},
        cx=cx,
        cy=cy,
    )
    diff = np.abs(ours - galsim_image)
    # Measured: 4e-5, 3e-5 and 8e-4 of the peak; the last is GalSim's own FFT folding and our
    # grid's wrap-around, both at the level of 0.1 sky sigma per pixel.
    assert diff.max() < 2e-3 * galsim_image.max()
    assert diff.max() < 0.25 * fitter.sky_sigma
    assert abs(ours.sum() - galsim_image.sum()) < 3e-3 * t["flux"]
    # The peak sits where GalSim put it (the centre convention matters to 0.1 px).
    assert np.unravel_index(ours.argmax(), ours.shape) == np.unravel_index(
        galsim_image.argmax(), galsim_image.shape
    )


def test_sersic_table_reduces_to_exponential_at_n1(fitter):
    """The tabulated Sersic transform at n = 1 is the exponential's (1 + (k h)^2)^(-3/2)."""
    r = fitter.renderer
    sersic = r.sersic_ft(1.0, 0.9, 0.4, 63.0)
    exponential = r.exponential_ft(0.9, 0.4, 63.0)
    assert np.abs(sersic - exponential).max() < 1e-5


def test_renderer_flux_and_centroid(fitter):
    """Unit flux renders to unit stamp flux (small galaxy, PSF halo beyond the stamp excepted)
    and the centroid lands where asked."""
    image = fitter.renderer.render(flux=1.0, bulge_to_total=0.5, n_bulge=2.0, log10_r_bulge=0.3,
                                   log10_r_disk=0.4, q_bulge=0.7, q_disk=0.7, pa=0.0,
                                   cx=30.3, cy=33.2)
    assert image.sum() == pytest.approx(0.98, abs=0.015)  # psf.npy holds 98% of the PSF's light
    yy, xx = np.indices(image.shape)
    assert (image * xx).sum() / image.sum() == pytest.approx(30.3, abs=0.02)
    assert (image * yy).sum() / image.sum() == pytest.approx(33.2, abs=0.02)


# -- (b) recovery --------------------------------------------------------------------------------

FIT_CASES = [
    dict(mag=19.0, bulge_to_total=0.4, n_bulge=4.0, log10_r_bulge=0.4, log10_r_disk=1.0,
         q_bulge=0.8, q_disk=0.4, pa=30.0, dx=0.2, dy=-0.3),
    dict(mag=19.5, bulge_to_total=0.6, n_bulge=2.0, log10_r_bulge=0.6, log10_r_disk=1.2,
         q_bulge=0.6, q_disk=0.7, pa=125.0, dx=-0.4, dy=0.1),
    dict(mag=18.5, bulge_to_total=0.25, n_bulge=3.0, log10_r_bulge=0.3, log10_r_disk=0.8,
         q_bulge=0.9, q_disk=0.25, pa=170.0, dx=0.0, dy=0.45),
]
# Tolerances, target order; ~3x the largest error seen over 3 noise seeds (S/N 800-1600).
FIT_TOLERANCE = {"mag": 0.02, "bulge_to_total": 0.06, "n_bulge": 0.35, "log10_r_bulge": 0.06,
                 "log10_r_disk": 0.03, "q_bulge": 0.1, "q_disk": 0.03, "pa": 1.0}


@pytest.mark.parametrize("index", range(len(FIT_CASES)))
def test_fit_recovers_high_snr_galaxies(index, recipe, fitter):
    t = truth(recipe, **FIT_CASES[index])
    noiseless = recipe.draw_noiseless(t)
    assert recipe.snr(noiseless) > 500
    image = recipe.add_noise(noiseless, galsim.BaseDeviate(20180 + index))
    result = fitter.fit(image.astype(np.float32))
    names = get_task(TASK).target_names
    for j, name in enumerate(names):
        error = result.params[j] - t[name]
        if name == "pa":
            error = (error + 90.0) % 180.0 - 90.0
        assert abs(error) < FIT_TOLERANCE[name], f"{name}: fit {result.params[j]}, true {t[name]}"
    cx, cy = stamp_centre(t)
    assert result.cx == pytest.approx(cx, abs=0.05)
    assert result.cy == pytest.approx(cy, abs=0.05)
    # A correct model leaves noise: chi^2 per pixel ~ 1 (per-pixel variance is right even though
    # the sky noise is correlated).
    assert 0.8 < result.chi2 / noiseless.size < 1.2


# -- (c) the submission contract -----------------------------------------------------------------


def test_targets_are_the_tasks(fitter):
    module = sys.modules[type(fitter).__module__]
    assert module.TARGETS == get_task(TASK).target_names


def test_predict_shape_dtype_and_pool_determinism(recipe, fitter):
    rng = np.random.default_rng(7)
    images = []
    for i in range(3):
        t = truth(recipe, **recipe.sample_truth(rng))
        images.append(recipe.add_noise(recipe.draw_noiseless(t), galsim.BaseDeviate(i + 1)))
    images = np.array(images, dtype=np.float32)[:, None]
    images.setflags(write=False)  # the harness passes read-only views

    serial = fitter.predict(images)
    assert serial.shape == (3, 8)
    assert serial.dtype == np.float64
    assert np.isfinite(serial).all()
    mag, bt, n, log_rb, log_rd, q_b, q_d, pa = serial.T
    assert ((18.0 < mag) & (mag < 25.0)).all()
    assert ((0.0 <= bt) & (bt <= 1.0)).all()
    assert ((1.0 <= n) & (n <= 4.0)).all()
    assert ((0.2 <= log_rb) & (log_rb <= 1.3) & (0.2 <= log_rd) & (log_rd <= 1.5)).all()
    assert ((0.05 <= q_b) & (q_b <= 0.95) & (0.05 <= q_d) & (q_d <= 0.95)).all()
    assert ((0.0 <= pa) & (pa < 180.0)).all()

    fitter.workers = 2  # same fits in two forked processes: bit-identical output
    try:
        pooled = fitter.predict(images)
    finally:
        fitter.close()
        fitter.workers = 1
    np.testing.assert_array_equal(pooled, serial)


def test_predict_rejects_wrong_shape(fitter):
    with pytest.raises(ValueError, match=r"\[B, 1, 64, 64\]"):
        fitter.predict(np.zeros((2, 64, 64), dtype=np.float32))
