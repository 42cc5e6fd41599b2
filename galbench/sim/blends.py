"""The deblending@1 recipe: a central galaxy and a companion, blended in one noisy stamp.

Each galaxy is a Sersic profile (index ``n`` on a grid of ``n_step``, circularised half-light
radius ``r_half`` in arcsec log-uniform, axis ratio ``q`` and position angle ``pa`` uniform). The
central galaxy sits at the stamp centre (offset by up to ``centroid_jitter`` pixels) with
magnitude ``mag``; the companion is ``flux_ratio`` times fainter or as bright (companion /
central flux, log-uniform), at ``separation`` arcsec (uniform) in a uniformly random direction.
Both are convolved with the PSF and drawn separately; the blend is their sum plus one noise
realisation (source Poisson + sky).

Truth: the target array ``isolated`` ``[2, C, H, W]`` float32: each galaxy's noiseless,
PSF-convolved image alone, in the blend's units (e-/s), source 0 the central galaxy and source 1
the companion. Catalog: both galaxies' parameters, the separation, the flux ratio, and each
galaxy's blendedness (Bosch et al. 2018; BTK): ``b = 1 - sum(iso^2) / sum(iso * blend)``, the
fraction of the galaxy's (squared) light overlapped by the other, with ``blendedness`` the larger
of the two.
"""

from __future__ import annotations

import math
from typing import Any

import galsim
import numpy as np

from galbench.errors import TaskSpecError
from galbench.sim.instruments import get_instrument
from galbench.sim.recipes import RECIPES, Recipe, RenderedObject, galsim_deviate, uniform_range
from galbench.tasks import TaskSpec

_GALSIM_N_RANGE = (0.3, 6.2)


#: Catalog columns every two-galaxy blend recipe starts with: the pair's geometry.
PAIR_COLUMNS = {
    "mag": "float64",
    "mag_companion": "float64",
    "flux_ratio": "float64",
    "separation": "float64",
    "angle": "float64",
    "dx": "float64",
    "dy": "float64",
}
#: ... and ends with: what :func:`finish_blend` adds.
BLEND_COLUMNS = {
    "blendedness_central": "float64",
    "blendedness_companion": "float64",
    "blendedness": "float64",
    "snr": "float64",
}


@RECIPES.register("two_galaxy_blend")
class TwoGalaxyBlendRecipe(Recipe):
    """Parameters (``[low, high]`` ranges): ``mag`` (central, AB), ``flux_ratio`` (log-uniform),
    ``separation`` (arcsec), ``n`` with ``n_step``, ``r_half`` (arcsec, log-uniform), ``q``,
    ``pa``; ``centroid_jitter`` (pixels)."""

    SOURCES = ("central", "companion")

    columns = {
        **PAIR_COLUMNS,
        **{f"{key}_{s}": "float64" for s in SOURCES for key in ("n", "r_half", "q", "pa")},
        **BLEND_COLUMNS,
    }

    def __init__(self, task: TaskSpec, split: str | None = None) -> None:
        super().__init__(task, split)
        p, where = task.simulation.params, task.source
        self.ranges = {
            key: uniform_range(p, key, where)
            for key in ("mag", "flux_ratio", "separation", "n", "r_half", "q", "pa")
        }
        step = p.get("n_step")
        if not isinstance(step, (int, float)) or step <= 0:
            raise TaskSpecError(f"{where}.simulation.params.n_step: expected a number > 0")
        lo, hi = self.ranges["n"]
        if lo < _GALSIM_N_RANGE[0] or hi > _GALSIM_N_RANGE[1]:
            raise TaskSpecError(f"{where}.simulation.params.n: GalSim supports 0.3-6.2")
        # A grid of Sersic indices: GalSim caches the set-up of at most 100 of them.
        self.n_grid = np.round(lo + step * np.arange(int(round((hi - lo) / step)) + 1), 6)
        if len(self.n_grid) > 100:
            raise TaskSpecError(f"{where}.simulation.params.n_step: more than 100 Sersic indices")
        if self.ranges["flux_ratio"][0] <= 0:
            raise TaskSpecError(f"{where}.simulation.params.flux_ratio: must be > 0")
        self.jitter = float(p.get("centroid_jitter", 0.0))
        self.instrument = get_instrument(task.simulation.instrument)
        c, h, w = task.image_shape
        if c != 1:
            raise TaskSpecError(f"{where}.image.shape: two_galaxy_blend renders one band, got C={c}")
        self.height, self.width = h, w

    def target_arrays(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"isolated": ((len(self.SOURCES), 1, self.height, self.width), "<f4")}

    def sample_galaxy(self, rng: np.random.Generator) -> dict[str, float]:
        r = self.ranges
        lo, hi = r["r_half"]
        return {
            "n": float(self.n_grid[rng.integers(len(self.n_grid))]),
            "r_half": float(math.exp(rng.uniform(math.log(lo), math.log(hi)))),
            "q": rng.uniform(*r["q"]),
            "pa": rng.uniform(*r["pa"]),
        }

    def draw(self, galaxy: dict[str, float], flux: float, offset: tuple[float, float]) -> np.ndarray:
        """One galaxy, PSF-convolved, at ``offset`` pixels from the stamp centre, e-/s."""
        light = galsim.Sersic(n=galaxy["n"], half_light_radius=galaxy["r_half"], flux=flux)
        light = light.shear(q=galaxy["q"], beta=galaxy["pa"] * galsim.degrees)
        profile = galsim.Convolve(light, self.instrument.galsim_psf())
        return profile.drawImage(
            nx=self.width, ny=self.height, scale=self.instrument.pixel_scale_arcsec,
            offset=offset, dtype=np.float64,
        ).array  # fmt: skip

    def render(self, seed: np.random.SeedSequence) -> RenderedObject:
        truth_seed, noise_seed = seed.spawn(2)
        rng = np.random.default_rng(truth_seed)
        r = self.ranges
        mag = rng.uniform(*r["mag"])
        lo, hi = r["flux_ratio"]
        ratio = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        separation = rng.uniform(*r["separation"])
        angle = rng.uniform(0.0, 360.0)
        dx, dy = rng.uniform(-self.jitter, self.jitter, size=2)
        central, companion = self.sample_galaxy(rng), self.sample_galaxy(rng)

        flux = float(self.instrument.flux_from_mag(mag))
        sep_px = separation / self.instrument.pixel_scale_arcsec
        a = math.radians(angle)
        isolated = np.stack([
            self.draw(central, flux, (dx, dy)),
            self.draw(companion, flux * ratio, (dx + sep_px * math.cos(a), dy + sep_px * math.sin(a))),
        ])  # fmt: skip
        truth = {
            "mag": mag,
            "mag_companion": mag - 2.5 * math.log10(ratio),
            "flux_ratio": ratio,
            "separation": separation,
            "angle": angle,
            "dx": dx,
            "dy": dy,
            **{f"{key}_central": value for key, value in central.items()},
            **{f"{key}_companion": value for key, value in companion.items()},
        }
        return finish_blend(self.instrument, isolated, truth, noise_seed)


def finish_blend(
    instrument: Any, isolated: np.ndarray, truth: dict[str, Any], noise_seed: np.random.SeedSequence,
    *, positive_part: bool = False,
) -> RenderedObject:
    """A blend from its two isolated galaxies ``[2, H, W]`` (e-/s, noiseless): their sum plus one
    noise realisation, the isolated images as the ``isolated`` target, and ``truth`` completed
    with each galaxy's blendedness and the blend's S/N.

    ``positive_part``: compute the blendedness on the positive part of each image, for real
    galaxies whose stamps carry their own noise (it can otherwise fall below 0).
    """
    noiseless = isolated.sum(axis=0)
    light = np.clip(isolated, 0.0, None) if positive_part else isolated
    total = light.sum(axis=0) if positive_part else noiseless
    overlap = [float(1.0 - np.sum(iso**2) / np.sum(iso * total)) for iso in light]
    truth = {
        **truth,
        "blendedness_central": overlap[0],
        "blendedness_companion": overlap[1],
        "blendedness": max(overlap),
        "snr": instrument.snr(noiseless),
    }
    image = instrument.add_noise(noiseless, galsim_deviate(noise_seed))
    return RenderedObject(
        image=image.astype(np.float32)[None],
        truth=truth,
        arrays={"isolated": isolated.astype(np.float32)[:, None]},
    )
