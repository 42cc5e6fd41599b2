"""The clumps@1 recipe: high-redshift-like star-forming disks with unresolved clumps.

A galaxy is an exponential disk (total AB magnitude ``mag``, circularised half-light radius
``r_half`` in arcsec, axis ratio ``q``, position angle ``pa``) plus ``n_clumps`` point sources
(uniform integer in ``[0, max_clumps]``): unresolved star-forming clumps, each holding a fraction
``f`` of the galaxy's total light, log-uniform in ``clump_flux_fraction`` (Guo et al. 2015/2018
define UV clumps as off-centre with fractional UV luminosity > 3%, Guo+18; Guo+15 used 8%).
The clump fractions are drawn together, redrawn until the clumps hold at most
``max_clump_light`` of the light (the disk keeps the rest). Clump positions follow the disk's
light (:func:`disk_light_offsets`), redrawn until off-centre (at least ``min_clump_radius``
pixels from the galaxy centre: Guo+ exclude the central bulge), 2 px inside the stamp, and at
least ``min_clump_separation`` pixels from the other clumps (resolved: two point sources closer
than the PSF FWHM are one clump to any finder).
Everything is convolved with the PSF; source Poisson and correlated sky noise follow.

Truth (DESIGN.md contract 3 target arrays):

- ``clumps`` ``[max_clumps, 4]`` float32: ``x, y, flux, flux_fraction`` per clump, NaN rows after
  the last. ``x`` is the column and ``y`` the row of the clump centre in numpy pixel coordinates
  (pixel centres at integers, ``image[y, x]``), flux in e-/s.
- ``clump_mask`` ``[1, H, W]`` uint8: 1 where a pixel centre lies within ``mask_radius`` pixels
  (half the PSF FWHM by default) of a clump centre: each clump's PSF core, whatever its flux;
  a pixel goes to its nearest clump, and pixels touching another clump's pixels are left out,
  so each clump is one 8-connected component of the mask (clumps are at least
  ``min_clump_separation`` pixels apart, so no clump loses its core) and the true mask scores
  clump F1 = 1 under the task's rule.
"""

from __future__ import annotations

import math

import galsim
import numpy as np

from galbench.errors import TaskSpecError
from galbench.sim.bulge_disk import disk_light_offsets
from galbench.sim.instruments import get_instrument
from galbench.sim.recipes import RECIPES, Recipe, RenderedObject, galsim_deviate, uniform_range
from galbench.tasks import TaskSpec


#: Clumps lie at least this many pixels inside the stamp's edges.
EDGE_MARGIN = 2.0


def _log_uniform(rng: np.random.Generator, lo: float, hi: float, size=None):
    return np.exp(rng.uniform(math.log(lo), math.log(hi), size=size))


@RECIPES.register("clumpy_disk")
class ClumpyDiskRecipe(Recipe):
    """Parameters (``[low, high]`` ranges): ``mag`` (AB, uniform), ``r_half`` (arcsec,
    log-uniform), ``q`` and ``pa`` (uniform), ``clump_flux_fraction`` (log-uniform per clump);
    numbers: ``max_clumps``, ``max_clump_light``, ``min_clump_radius``,
    ``min_clump_separation``, ``mask_radius`` and ``centroid_jitter`` (pixels)."""

    columns = {
        "mag": "float64",
        "flux": "float64",
        "r_half": "float64",
        "q": "float64",
        "pa": "float64",
        "dx": "float64",
        "dy": "float64",
        "n_clumps": "int64",
        "clump_light_fraction": "float64",
        "min_clump_flux_fraction": "float64",
        "snr": "float64",
    }

    def __init__(self, task: TaskSpec, split: str | None = None) -> None:
        super().__init__(task, split)
        p, where = task.simulation.params, task.source
        self.ranges = {
            key: uniform_range(p, key, where)
            for key in ("mag", "r_half", "q", "pa", "clump_flux_fraction")
        }

        def number(key: str, low: float) -> float:
            value = p.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < low:
                raise TaskSpecError(f"{where}.simulation.params.{key}: expected a number >= {low}")
            return float(value)

        self.max_clumps = int(number("max_clumps", 0))
        self.max_clump_light = number("max_clump_light", 0)
        if not self.max_clumps * self.ranges["clump_flux_fraction"][0] < self.max_clump_light < 1:
            raise TaskSpecError(
                f"{where}.simulation.params.max_clump_light: must lie between max_clumps x the "
                "smallest clump fraction and 1"
            )
        self.min_clump_radius = number("min_clump_radius", 0)
        self.min_clump_separation = number("min_clump_separation", 0)
        self.jitter = number("centroid_jitter", 0)
        self.instrument = get_instrument(task.simulation.instrument)
        self.mask_radius = float(p.get("mask_radius", 0.5 * self.instrument.psf_fwhm_arcsec / self.instrument.pixel_scale_arcsec))
        c, h, w = task.image_shape
        if c != 1:
            raise TaskSpecError(f"{where}.image.shape: clumpy_disk renders one band, got C={c}")
        self.height, self.width = h, w

    def target_arrays(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {
            "clumps": ((self.max_clumps, 4), "<f4"),
            "clump_mask": ((1, self.height, self.width), "|u1"),
        }

    def centre(self, dx: float, dy: float) -> tuple[float, float]:
        """Numpy pixel coordinates (x = column, y = row) of a profile drawn at offset (dx, dy):
        GalSim centres an image's profile on its true centre, (W - 1) / 2 in numpy indexing."""
        return (self.width - 1) / 2 + dx, (self.height - 1) / 2 + dy

    def sample_clumps(self, rng: np.random.Generator, r_half_px: float, q: float, pa: float):
        """``(offsets [k, 2] in pixels, flux fractions [k])``."""
        k = int(rng.integers(self.max_clumps + 1))
        lo, hi = self.ranges["clump_flux_fraction"]
        while True:
            fractions = _log_uniform(rng, lo, hi, size=k)
            if fractions.sum() <= self.max_clump_light:
                break
        # Inside the stamp, EDGE_MARGIN px from its edges (the centre is jittered by at most
        # ``centroid_jitter``), so that every clump can be seen and its mask core is whole.
        half_w = (self.width - 1) / 2 - self.jitter - EDGE_MARGIN
        half_h = (self.height - 1) / 2 - self.jitter - EDGE_MARGIN
        offsets = np.empty((k, 2))
        for j in range(k):
            while True:
                offset = disk_light_offsets(rng, r_half_px, q, pa, 1)[0]
                inside = abs(offset[0]) <= half_w and abs(offset[1]) <= half_h
                apart = j == 0 or np.hypot(*(offsets[:j] - offset).T).min() >= self.min_clump_separation
                if inside and apart and math.hypot(*offset) >= self.min_clump_radius:
                    offsets[j] = offset
                    break
        return offsets, fractions

    def clump_mask(self, xy: np.ndarray) -> np.ndarray:
        """``[H, W]`` bool: pixels whose centre lies within ``mask_radius`` of a clump centre,
        each given to its nearest clump, less the pixels touching (8-neighbours) another clump's
        pixels, so that every clump is its own 8-connected component."""
        if not len(xy):
            return np.zeros((self.height, self.width), dtype=bool)
        yy, xx = np.indices((self.height, self.width))
        distance = np.hypot(xx[None] - xy[:, 0, None, None], yy[None] - xy[:, 1, None, None])
        label = np.where(distance.min(axis=0) <= self.mask_radius, distance.argmin(axis=0) + 1, 0)
        padded = np.pad(label, 1)
        border = np.zeros(label.shape, dtype=bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                other = padded[1 + dy : 1 + dy + self.height, 1 + dx : 1 + dx + self.width]
                border |= (other > 0) & (other != label)
        return (label > 0) & ~border

    def render(self, seed: np.random.SeedSequence) -> RenderedObject:
        truth_seed, noise_seed = seed.spawn(2)
        rng = np.random.default_rng(truth_seed)
        r = self.ranges
        scale = self.instrument.pixel_scale_arcsec
        mag = rng.uniform(*r["mag"])
        r_half = float(_log_uniform(rng, *r["r_half"]))
        q, pa = rng.uniform(*r["q"]), rng.uniform(*r["pa"])
        dx, dy = rng.uniform(-self.jitter, self.jitter, size=2)
        # Clumps follow the light of the (inclined) disk: the major-axis half-light radius is
        # the circularised one / sqrt(q).
        offsets, fractions = self.sample_clumps(rng, r_half / scale / math.sqrt(q), q, pa)
        flux = float(self.instrument.flux_from_mag(mag))

        light = galsim.Exponential(half_light_radius=r_half, flux=flux * (1 - fractions.sum()))
        light = light.shear(q=q, beta=pa * galsim.degrees)
        for (ox, oy), f in zip(offsets, fractions):
            light += galsim.DeltaFunction(flux=flux * f).shift(ox * scale, oy * scale)
        profile = galsim.Convolve(light, self.instrument.galsim_psf())
        noiseless = profile.drawImage(
            nx=self.width, ny=self.height, scale=scale, offset=(dx, dy), dtype=np.float64
        ).array

        cx, cy = self.centre(dx, dy)
        clumps = np.full((self.max_clumps, 4), np.nan, dtype=np.float32)
        clumps[: len(fractions)] = np.column_stack(
            [cx + offsets[:, 0], cy + offsets[:, 1], flux * fractions, fractions]
        ) if len(fractions) else np.empty((0, 4))
        mask = self.clump_mask(clumps[: len(fractions), :2].astype(np.float64))

        truth = {
            "mag": mag,
            "flux": flux,
            "r_half": r_half,
            "q": q,
            "pa": pa,
            "dx": dx,
            "dy": dy,
            "n_clumps": len(fractions),
            "clump_light_fraction": float(fractions.sum()),
            "min_clump_flux_fraction": float(fractions.min()) if len(fractions) else math.nan,
            "snr": self.instrument.snr(noiseless),
        }
        image = self.instrument.add_noise(noiseless, galsim_deviate(noise_seed))
        return RenderedObject(
            image=image.astype(np.float32)[None],
            truth=truth,
            arrays={"clumps": clumps, "clump_mask": mask.astype(np.uint8)[None]},
        )
