"""Instruments as data: pixel scale, PSF, photometric zero point, band and noise from survey depth.

Every number carries its source. Image units are electrons per second per pixel (e-/s), the units
of drizzled HST mosaics, so that ``flux = 10**(-0.4 * (mag - zero_point))``.

The sky noise is derived from the survey's quoted 5-sigma point-source depth rather than typed in:
a point source at the depth, measured in a circular aperture, has S/N = 5. The aperture variance
of correlated noise is the pixel variance times the number of aperture pixels times the sum of
the normalised noise correlation over lags (``correlation_gain``), so a correlated-noise
instrument gets a smaller pixel sigma than a white-noise one with the same depth.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import galsim
import numpy as np

from galbench._registry import Registry


@dataclass(frozen=True)
class AiryGaussianPSF:
    """A diffraction-limited telescope (Airy with central obscuration) convolved with a Gaussian
    standing for detector charge diffusion, telescope jitter and drizzling.

    Sizes in arcsec; wavelength in nm; aperture diameter in m.
    """

    wavelength_nm: float
    diameter_m: float
    obscuration: float
    gaussian_fwhm_arcsec: float

    def to_galsim(self) -> galsim.GSObject:
        airy = galsim.Airy(
            lam=self.wavelength_nm,
            diam=self.diameter_m,
            obscuration=self.obscuration,
            scale_unit=galsim.arcsec,
        )
        return galsim.Convolve(airy, galsim.Gaussian(fwhm=self.gaussian_fwhm_arcsec))


@dataclass(frozen=True)
class SurveyNoise:
    """Noise of a survey image, set by its published depth.

    depth_mag:
        5-sigma point-source limiting AB magnitude.
    aperture_radius_arcsec:
        Radius of the circular aperture the depth refers to (aperture-corrected flux).
    exposure_time_s:
        Effective exposure; only sets the source Poisson term (variance = flux / t in e-/s).
    correlation:
        ``"cosmos"``: the pixel-to-pixel correlation of drizzled HST mosaics, from GalSim's
        stacked COSMOS ACS correlation function (``galsim.getCOSMOSNoise``) mapped onto this
        instrument's pixels; ``"white"``: uncorrelated.
    """

    depth_mag: float
    aperture_radius_arcsec: float
    exposure_time_s: float
    correlation: str = "white"


@dataclass(frozen=True)
class Instrument:
    """An imaging instrument in one band."""

    name: str
    description: str
    band: str
    pivot_wavelength_nm: float
    pixel_scale_arcsec: float
    zero_point_ab: float
    psf: AiryGaussianPSF
    noise: SurveyNoise
    sources: tuple[str, ...]

    # -- photometry ------------------------------------------------------------------------
    def flux_from_mag(self, mag: float | np.ndarray) -> float | np.ndarray:
        """AB magnitude -> total flux in e-/s."""
        return 10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - self.zero_point_ab))

    def mag_from_flux(self, flux: float | np.ndarray) -> float | np.ndarray:
        """Total flux in e-/s -> AB magnitude."""
        return self.zero_point_ab - 2.5 * np.log10(np.asarray(flux, dtype=float))

    # -- noise -----------------------------------------------------------------------------
    def galsim_psf(self) -> galsim.GSObject:
        return _galsim_psf(self)

    def correlated_noise(self, rng: galsim.BaseDeviate) -> galsim.BaseNoise:
        """The sky noise with its pixel variance and correlation, drawing from ``rng``."""
        variance = self.sky_sigma**2
        if self.noise.correlation == "white":
            return galsim.GaussianNoise(rng, sigma=self.sky_sigma)
        return _cosmos_noise(self.pixel_scale_arcsec, variance).copy(rng=rng)

    @property
    def correlation_gain(self) -> float:
        """Sum over lags of the normalised pixel noise correlation (1 for white noise)."""
        if self.noise.correlation == "white":
            return 1.0
        return _cosmos_correlation_gain(self.pixel_scale_arcsec)

    @property
    def aperture_fraction(self) -> float:
        """Fraction of a point source's flux inside the depth aperture (pixel-convolved PSF)."""
        return _aperture_fraction(self)

    @property
    def sky_sigma(self) -> float:
        """Per-pixel sky noise in e-/s, so that a point source at ``depth_mag`` has S/N = 5."""
        return _sky_sigma(self)

    @property
    def psf_fwhm_arcsec(self) -> float:
        """FWHM of the PSF as drawn on this instrument's pixels (pixel response included)."""
        return _psf_fwhm(self)


@functools.lru_cache(maxsize=None)
def _galsim_psf(inst: Instrument) -> galsim.GSObject:
    return inst.psf.to_galsim()


@functools.lru_cache(maxsize=None)
def _cosmos_noise(pixel_scale: float, variance: float) -> galsim.BaseCorrelatedNoise:
    # cosmos_scale = our pixel scale maps the COSMOS pixel-lag correlation onto our pixels: the
    # correlation of a drizzled mosaic is a per-pixel property of drizzling, not an angular one.
    return galsim.getCOSMOSNoise(cosmos_scale=pixel_scale, variance=variance)


@functools.lru_cache(maxsize=None)
def _cosmos_correlation_gain(pixel_scale: float) -> float:
    cf = galsim.getCOSMOSNoise(cosmos_scale=pixel_scale, variance=1.0)
    image = cf.drawImage(galsim.ImageD(41, 41, scale=pixel_scale))
    # drawImage gives the correlation at integer pixel lags; at zero lag it is the variance, 1.
    return float(image.array.sum() / image.array[20, 20])


@functools.lru_cache(maxsize=None)
def _aperture_fraction(inst: Instrument) -> float:
    scale = inst.pixel_scale_arcsec
    size = 2 * int(math.ceil(3 * inst.noise.aperture_radius_arcsec / scale)) + 1
    image = inst.galsim_psf().drawImage(nx=size, ny=size, scale=scale).array
    yy, xx = np.indices(image.shape) - size // 2
    inside = np.hypot(xx, yy) * scale <= inst.noise.aperture_radius_arcsec
    return float(image[inside].sum())


@functools.lru_cache(maxsize=None)
def _sky_sigma(inst: Instrument) -> float:
    flux_at_depth = inst.flux_from_mag(inst.noise.depth_mag) * inst.aperture_fraction
    n_pixels = math.pi * (inst.noise.aperture_radius_arcsec / inst.pixel_scale_arcsec) ** 2
    sigma_aperture = flux_at_depth / 5.0
    return float(sigma_aperture / math.sqrt(n_pixels * inst.correlation_gain))


@functools.lru_cache(maxsize=None)
def _psf_fwhm(inst: Instrument) -> float:
    image = inst.galsim_psf().drawImage(nx=63, ny=63, scale=inst.pixel_scale_arcsec)
    return float(image.calculateFWHM())


INSTRUMENTS: Registry[Instrument] = Registry("instrument")


def get_instrument(name: str) -> Instrument:
    return INSTRUMENTS.get(name)


INSTRUMENTS.add(
    "hst_wfc3_f160w",
    Instrument(
        name="hst_wfc3_f160w",
        description="HST WFC3/IR F160W (H band), CANDELS-Wide-like drizzled mosaic",
        band="F160W",
        # F160W pivot wavelength 1536.9 nm (WFC3 Instrument Handbook, IR filter table).
        pivot_wavelength_nm=1536.9,
        # CANDELS mosaics are drizzled to 0.06"/px (Koekemoer et al. 2011); Tuccillo+18 used it.
        pixel_scale_arcsec=0.06,
        # AB zero point of F160W for 1 e-/s: 25.946 (STScI WFC3/IR photometric calibration).
        zero_point_ab=25.946,
        psf=AiryGaussianPSF(
            wavelength_nm=1536.9,
            diameter_m=2.4,  # HST primary mirror
            obscuration=0.33,  # HST secondary mirror, linear fraction of the aperture
            # Charge diffusion + jitter + drizzle, chosen so that the PSF drawn on 0.06" pixels
            # has the ~0.18" FWHM of CANDELS F160W mosaics (van der Wel et al. 2012, Sec. 2);
            # tests/test_instruments.py checks the drawn FWHM.
            gaussian_fwhm_arcsec=0.125,
        ),
        noise=SurveyNoise(
            # CANDELS/Wide 5-sigma point-source limit H = 27.0 AB (Grogin et al. 2011, abstract).
            depth_mag=27.0,
            # Aperture radius the depth refers to: 0.2" (assumption; Grogin+11 quote
            # aperture-corrected point-source limits without a single radius).
            aperture_radius_arcsec=0.2,
            # ~4/3 orbit in F160W per CANDELS/Wide tile (Grogin+11 observing design),
            # approximate; it only sets the source Poisson term.
            exposure_time_s=3300.0,
            correlation="cosmos",
        ),
        sources=(
            "Grogin et al. 2011, ApJS 197, 35 (CANDELS depth and design)",
            "Koekemoer et al. 2011, ApJS 197, 36 (0.06 arcsec/px drizzled mosaics)",
            "van der Wel et al. 2012, ApJS 203, 24 (F160W PSF FWHM ~0.18 arcsec)",
            "WFC3 Instrument Handbook (F160W pivot wavelength, AB zero point 25.946)",
            "GalSim getCOSMOSNoise (Leauthaud et al. 2007 COSMOS ACS noise correlation)",
        ),
    ),
)
