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
class SeeingPSF:
    """A ground-based PSF: atmospheric seeing as a Kolmogorov profile of the given FWHM (the
    telescope's own diffraction is negligible at ~1 arcsec seeing). Sizes in arcsec."""

    fwhm_arcsec: float

    def to_galsim(self) -> galsim.GSObject:
        return galsim.Kolmogorov(fwhm=self.fwhm_arcsec)


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
    psf: AiryGaussianPSF | SeeingPSF
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

    def add_noise(self, noiseless: np.ndarray, deviate: galsim.BaseDeviate) -> np.ndarray:
        """A noisy image from a noiseless model in e-/s: source Poisson noise (from the exposure
        time) plus the sky noise, drawing from ``deviate``."""
        t = self.noise.exposure_time_s
        # One image throughout: electrons for the Poisson draw, then back to e-/s in place.
        image = galsim.ImageD(np.clip(noiseless, 0.0, None) * t, scale=self.pixel_scale_arcsec)
        image.addNoise(galsim.PoissonNoise(deviate))
        image /= t
        image.addNoise(self.correlated_noise(deviate))
        return image.array

    def snr(self, noiseless: np.ndarray) -> float:
        """Matched-filter S/N, sqrt(sum I^2 / var), with var = sky variance x correlation gain
        + source Poisson variance (exact for white noise; for correlated noise it is the usual
        large-scale approximation)."""
        var = self.sky_sigma**2 * self.correlation_gain + np.clip(noiseless, 0, None) / (
            self.noise.exposure_time_s
        )
        return float(np.sqrt(np.sum(noiseless**2 / var)))

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


INSTRUMENTS.add(
    "sdss_r",
    Instrument(
        name="sdss_r",
        description="SDSS imaging, r band (the images Galaxy Zoo classified)",
        band="r",
        # SDSS r effective wavelength 616.6 nm (Fukugita et al. 1996, Table 2a).
        pivot_wavelength_nm=616.6,
        # SDSS camera pixels are 0.396" (Gunn et al. 1998).
        pixel_scale_arcsec=0.396,
        # Photometric zero point: ~24.0 mag for 1 DN/s in r (tsField "aa" ~ -24.0 at unit
        # airmass; Stoughton et al. 2002, Sec. 4.5) with a gain of ~4.7 e-/DN (r-band CCDs,
        # Gunn et al. 1998): 24.0 + 2.5 log10(4.7) = 25.7 AB for 1 e-/s. Approximate; it only
        # sets the source Poisson term (the sky noise follows from the depth).
        zero_point_ab=25.7,
        # Median r-band seeing of SDSS imaging, PSF FWHM ~1.4" (Stoughton et al. 2002; the
        # DR7 median is 1.3-1.4", Abazajian et al. 2009).
        psf=SeeingPSF(fwhm_arcsec=1.4),
        noise=SurveyNoise(
            # 95% completeness limit for point sources r = 22.2 (York et al. 2000; Abazajian et
            # al. 2004), taken as the 5-sigma point-source depth.
            depth_mag=22.2,
            # ~0.7 x FWHM, close to the optimal aperture for a point source (assumption).
            aperture_radius_arcsec=1.0,
            # 53.9 s drift-scan exposure per band (Gunn et al. 2006).
            exposure_time_s=53.9,
            correlation="white",
        ),
        sources=(
            "Gunn et al. 1998, AJ 116, 3040 (camera, 0.396 arcsec pixels, gains)",
            "York et al. 2000, AJ 120, 1579 (r = 22.2 point-source limit)",
            "Stoughton et al. 2002, AJ 123, 485 (photometric zero points, seeing)",
            "Gunn et al. 2006, AJ 131, 2332 (53.9 s exposures)",
            "Fukugita et al. 1996, AJ 111, 1748 (r effective wavelength)",
        ),
    ),
)


INSTRUMENTS.add(
    "des_r",
    Instrument(
        name="des_r",
        description="Dark Energy Survey wide-field coadds (DECam), r band",
        band="r",
        # DECam r effective wavelength ~642 nm (DES DR1, Abbott et al. 2018, Table 1).
        pivot_wavelength_nm=642.0,
        # DECam pixels are 0.263" (Flaugher et al. 2015); DES coadds keep that scale.
        pixel_scale_arcsec=0.263,
        # ~31.4 mag for 1 e- in a 90 s r exposure (typical DES zero point, Burke et al. 2018)
        # -> 31.4 - 2.5 log10(90) = 26.5 AB for 1 e-/s. Approximate; only the Poisson term.
        zero_point_ab=26.5,
        # Median r-band PSF FWHM 0.95" in the DES wide survey (Abbott et al. 2018, DR1).
        psf=SeeingPSF(fwhm_arcsec=0.95),
        noise=SurveyNoise(
            # DR1 median coadd depth r = 23.8 at S/N = 10 in a 1.95" diameter aperture
            # (Abbott et al. 2018): 5 sigma is 2.5 log10(2) = 0.75 mag fainter, 24.55.
            depth_mag=24.55,
            aperture_radius_arcsec=0.975,
            # ~10 tilings of 90 s (DES wide-survey design, Abbott et al. 2018).
            exposure_time_s=900.0,
            correlation="white",
        ),
        sources=(
            "Flaugher et al. 2015, AJ 150, 150 (DECam, 0.263 arcsec pixels)",
            "Abbott et al. 2018, ApJS 239, 18 (DES DR1: depth, PSF FWHM, tilings)",
            "Burke et al. 2018, AJ 155, 41 (DES photometric calibration, zero points)",
        ),
    ),
)



INSTRUMENTS.add(
    "hst_acs_f606w",
    Instrument(
        name="hst_acs_f606w",
        description="HST ACS/WFC F606W (V band; rest-frame UV at z ~ 1.5-2.5), GOODS/CANDELS-like drizzled mosaic",
        band="F606W",
        # F606W pivot wavelength ~592 nm (ACS Instrument Handbook, WFC filter table).
        pivot_wavelength_nm=591.8,
        # GOODS/CANDELS ACS mosaics are drizzled to 0.03"/px (Koekemoer et al. 2011); Guo+15/18
        # found clumps on them.
        pixel_scale_arcsec=0.03,
        # AB zero point of ACS/WFC F606W for 1 e-/s: ~26.49 (ACS zero-point calculator; it drifts
        # by ~0.01 mag with date). Approximate.
        zero_point_ab=26.49,
        psf=AiryGaussianPSF(
            wavelength_nm=591.8,
            diameter_m=2.4,
            obscuration=0.33,
            # Charge diffusion + jitter + drizzle, chosen so that the PSF drawn on 0.03" pixels
            # has a FWHM of ~0.09", that of drizzled ACS optical mosaics (Koekemoer et al. 2011);
            # tests/test_sim_clumps.py checks the drawn FWHM.
            gaussian_fwhm_arcsec=0.07,
        ),
        noise=SurveyNoise(
            # 5-sigma point-source depth ~28.0 AB, approximately GOODS-depth F606W (Giavalisco
            # et al. 2004); approximate: it sets the S/N of the faintest clumps.
            depth_mag=28.0,
            # A compact aperture of ~1 PSF FWHM in diameter for a point source (assumption).
            aperture_radius_arcsec=0.1,
            # ~5 ks in F606W per GOODS field position (Giavalisco et al. 2004), approximate; it
            # only sets the source Poisson term.
            exposure_time_s=5000.0,
            # The COSMOS correlation function was measured on ACS mosaics: here it applies as is.
            correlation="cosmos",
        ),
        sources=(
            "Giavalisco et al. 2004, ApJ 600, L93 (GOODS ACS depth and exposure)",
            "Koekemoer et al. 2011, ApJS 197, 36 (0.03 arcsec/px ACS mosaics, PSF)",
            "ACS Instrument Handbook (F606W pivot wavelength, AB zero point)",
            "GalSim getCOSMOSNoise (Leauthaud et al. 2007 COSMOS ACS noise correlation)",
        ),
    ),
)
