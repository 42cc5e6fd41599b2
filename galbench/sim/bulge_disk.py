"""Bulge + disk galaxies: a Sersic bulge and an exponential disk, PSF-convolved, with survey noise.

The recipe of morphometry@1, after Tuccillo et al. (2018, DeepLeGATo). Radii are half-light radii
along the major axis in pixels (GALFIT's convention), position angles are in degrees counter-
clockwise from the +x axis (array column axis, with rows as +y), in [0, 180). The galaxy centre is
the stamp centre plus (dx, dy): for a 64x64 stamp, 0-based array position (31.5 + dx, 31.5 + dy),
i.e. the corner shared by the four central pixels, as GalSim centres even-sized images.
"""

from __future__ import annotations

import math

import galsim
import numpy as np

from galbench.errors import TaskSpecError
from galbench.sim.instruments import get_instrument
from galbench.sim.recipes import RECIPES, Recipe, RenderedObject, galsim_deviate, uniform_range
from galbench.tasks import TaskSpec

# GalSim's Sersic profile supports 0.3 <= n <= 6.2.
_GALSIM_N_RANGE = (0.3, 6.2)


def disk_light_offsets(
    rng: np.random.Generator, half_light_radius: float, q: float, pa_deg: float, k: int
) -> np.ndarray:
    """``k`` positions ``[k, 2]`` (x, y; in the unit of ``half_light_radius``, relative to the
    centre) drawn from an exponential disk's light, for clumps: the radius follows Gamma(2) in
    scale lengths (hlr = 1.678 scale lengths), kept within 2 half-light radii; then inclined by
    the axis ratio ``q`` and rotated by the position angle (degrees, counter-clockwise from +x)."""
    r = np.minimum(rng.gamma(2.0, half_light_radius / 1.678, size=k), 2.0 * half_light_radius)
    theta = rng.uniform(0.0, 2.0 * math.pi, size=k)
    x, y = r * np.cos(theta), r * q * np.sin(theta)
    pa = math.radians(pa_deg)
    return np.stack([x * math.cos(pa) - y * math.sin(pa), x * math.sin(pa) + y * math.cos(pa)], 1)


@RECIPES.register("bulge_disk")
class BulgeDiskRecipe(Recipe):
    """Draws a bulge+disk galaxy from uniform priors given in the task's ``simulation.params``.

    Parameters (all ``[low, high]`` uniform ranges unless noted): ``mag`` (total AB),
    ``bulge_to_total``, ``n_bulge`` with ``n_bulge_step`` (n is drawn on this grid: GalSim caches
    the Hankel tables of at most 100 Sersic indices, and each new n costs ~10 ms of set-up, so a
    grid of 61 values doubles throughput), ``log10_r_bulge`` and ``log10_r_disk`` (pixels),
    ``q_bulge``, ``q_disk`` (axis ratios b/a), ``pa`` (degrees, shared by bulge and disk), and
    ``centroid_jitter`` (pixels; the centre is offset uniformly by up to this much in x and y).
    """

    columns = {
        "mag": "float64",
        "flux": "float64",
        "bulge_to_total": "float64",
        "n_bulge": "float64",
        "log10_r_bulge": "float64",
        "log10_r_disk": "float64",
        "q_bulge": "float64",
        "q_disk": "float64",
        "pa": "float64",
        "dx": "float64",
        "dy": "float64",
        "stamp_flux_fraction": "float64",
        "snr": "float64",
    }

    def __init__(self, task: TaskSpec, split: str | None = None) -> None:
        super().__init__(task, split)
        p, where = task.simulation.params, task.source
        self.ranges = {
            key: uniform_range(p, key, where)
            for key in (
                "mag",
                "bulge_to_total",
                "n_bulge",
                "log10_r_bulge",
                "log10_r_disk",
                "q_bulge",
                "q_disk",
                "pa",
            )
        }
        step = p.get("n_bulge_step")
        if not isinstance(step, (int, float)) or step <= 0:
            raise TaskSpecError(f"{where}.simulation.params.n_bulge_step: expected a number > 0")
        lo, hi = self.ranges["n_bulge"]
        if lo < _GALSIM_N_RANGE[0] or hi > _GALSIM_N_RANGE[1]:
            raise TaskSpecError(f"{where}.simulation.params.n_bulge: GalSim supports 0.3-6.2")
        n_steps = int(round((hi - lo) / step))
        self.n_grid = np.round(lo + step * np.arange(n_steps + 1), 6)
        if len(self.n_grid) > 100:
            raise TaskSpecError(
                f"{where}.simulation.params.n_bulge_step: {len(self.n_grid)} Sersic indices "
                "exceed GalSim's cache of 100; use a coarser step"
            )
        self.jitter = float(p.get("centroid_jitter", 0.0))
        self.instrument = get_instrument(task.simulation.instrument)
        c, h, w = task.image_shape
        if c != 1:
            raise TaskSpecError(f"{where}.image.shape: bulge_disk renders one band, got C={c}")
        self.height, self.width = h, w

    def sample_truth(self, rng: np.random.Generator) -> dict[str, float]:
        """Draw the structural parameters (the numpy half of an object's randomness)."""
        r = self.ranges
        truth = {
            "mag": rng.uniform(*r["mag"]),
            "bulge_to_total": rng.uniform(*r["bulge_to_total"]),
            "n_bulge": float(self.n_grid[rng.integers(len(self.n_grid))]),
            "log10_r_bulge": rng.uniform(*r["log10_r_bulge"]),
            "log10_r_disk": rng.uniform(*r["log10_r_disk"]),
            "q_bulge": rng.uniform(*r["q_bulge"]),
            "q_disk": rng.uniform(*r["q_disk"]),
            "pa": rng.uniform(*r["pa"]),
            "dx": rng.uniform(-self.jitter, self.jitter),
            "dy": rng.uniform(-self.jitter, self.jitter),
        }
        truth["flux"] = float(self.instrument.flux_from_mag(truth["mag"]))
        return truth

    def galaxy(self, truth: dict[str, float]) -> galsim.GSObject:
        """The PSF-free galaxy profile, sizes in arcsec."""
        scale = self.instrument.pixel_scale_arcsec
        beta = truth["pa"] * galsim.degrees
        flux = truth["flux"]

        def circularised_hlr(log10_r_major_px: float, q: float) -> float:
            # Shearing at fixed area: the circularised radius is r_major * sqrt(q).
            return 10.0**log10_r_major_px * scale * math.sqrt(q)

        bulge = galsim.Sersic(
            n=truth["n_bulge"],
            half_light_radius=circularised_hlr(truth["log10_r_bulge"], truth["q_bulge"]),
            flux=flux * truth["bulge_to_total"],
        ).shear(q=truth["q_bulge"], beta=beta)
        disk = galsim.Exponential(
            half_light_radius=circularised_hlr(truth["log10_r_disk"], truth["q_disk"]),
            flux=flux * (1.0 - truth["bulge_to_total"]),
        ).shear(q=truth["q_disk"], beta=beta)
        return bulge + disk

    def draw_noiseless(self, truth: dict[str, float]) -> np.ndarray:
        """PSF-convolved, pixel-integrated model in e-/s per pixel, ``[H, W]`` float64."""
        return self.draw(self.galaxy(truth), truth)

    def draw(self, light: galsim.GSObject, truth: dict[str, float]) -> np.ndarray:
        """``light`` (a PSF-free profile centred on the galaxy) convolved with the PSF and drawn
        at the galaxy's offset, ``[H, W]`` float64 e-/s per pixel."""
        profile = galsim.Convolve(light, self.instrument.galsim_psf())
        image = profile.drawImage(
            nx=self.width,
            ny=self.height,
            scale=self.instrument.pixel_scale_arcsec,
            offset=(truth["dx"], truth["dy"]),
            dtype=np.float64,
        )
        return image.array

    def add_noise(self, noiseless: np.ndarray, deviate: galsim.BaseDeviate) -> np.ndarray:
        return self.instrument.add_noise(noiseless, deviate)

    def snr(self, noiseless: np.ndarray) -> float:
        return self.instrument.snr(noiseless)

    def render(self, seed: np.random.SeedSequence) -> RenderedObject:
        truth_seed, noise_seed = seed.spawn(2)
        truth = self.sample_truth(np.random.default_rng(truth_seed))
        noiseless = self.draw_noiseless(truth)
        truth["stamp_flux_fraction"] = float(noiseless.sum() / truth["flux"])
        truth["snr"] = self.snr(noiseless)
        image = self.add_noise(noiseless, galsim_deviate(noise_seed))
        return RenderedObject(image=image.astype(np.float32)[None], truth=truth)
