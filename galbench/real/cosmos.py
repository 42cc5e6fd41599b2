"""Real HST COSMOS galaxies as real splits of the simulated tasks (Tuccillo+18's question: does a
network trained on analytic profiles still work on real galaxies?).

The galaxies are the HST/ACS F814W postage stamps of a GalSim ``RealGalaxyCatalog`` (the
100-galaxy example of ``../shared/data/cosmos_hst``; the full COSMOS 23.5/25.2 training samples
have the same format). GalSim deconvolves each stamp by its own ACS PSF, and the recipes here
rotate it, reconvolve it with the task's instrument PSF and draw it on the task's pixel grid:
the same instrument, noise model and stamp as the simulated splits, with real morphology in place
of Sersic profiles.

Flux: each galaxy is drawn at its catalog F814W magnitude minus the split's colour
``params.i_minus_h`` (F814W - F160W in AB; 1.0 for the splits of ``tasks/_real_splits.toml``,
typical of field galaxies at z ~ 0.5-1), so the 20.2-26.0 mag sample lands at H = 19.2-25.0,
mostly inside the simulated priors. The stamps keep their own HST noise: after the
0.03" -> 0.06" resampling and the wider F160W PSF it is 0.0006-0.0009 e-/s per pixel at the
catalog flux (measured with GalSim's propagated noise), so ~0.002 after the 2.5x flux scaling,
half the task's sky noise (0.0039). It is part of the truth images, as in any real-galaxy
benchmark (BTK's COSMOS galaxies carry theirs too).

Recipes:
- ``cosmos_blends`` (deblending@1 ``real_cosmos``): two distinct catalog galaxies, the brighter
  central, the pair kept if the companion/central flux ratio is within the task's range;
  separation, direction and centroid jitter from the task's priors, each galaxy rotated by a
  uniform angle. Truth: the two isolated galaxies, as in the simulated splits.
- ``cosmos_galaxies`` (morphometry@1 ``real_cosmos``): object ``i`` is catalog galaxy ``ids[i]``,
  rotated by a uniform angle and jittered like the simulated galaxies. Truth: ``mag`` (the
  magnitude it is drawn at) and
  ``log10_r_half``, the half-light radius from the catalog's SExtractor ``flux_radius`` (measured
  in circular apertures on the ACS image): converted to the task's pixels and with the ACS PSF
  removed in quadrature (``r^2 - (FWHM/2)^2``, exact for Gaussians), so that it compares with
  the intrinsic circular half-light radius of a predicted bulge+disk model
  (:func:`galbench.metrics.regression.bulge_disk_half_light_radius`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import galsim
import numpy as np

from galbench.errors import TaskSpecError
from galbench.sim.blends import BLEND_COLUMNS, PAIR_COLUMNS, finish_blend
from galbench.sim.instruments import get_instrument
from galbench.sim.recipes import RECIPES, RealRecipe, RenderedObject, galsim_deviate, uniform_range
from galbench.tasks import TaskSpec

#: ACS/WFC F814W PSF FWHM in arcsec (the COSMOS PSF; Koekemoer et al. 2007, Rhodes et al. 2007
#: quote ~0.09-0.1"), used only to remove the PSF from SExtractor's flux_radius.
ACS_F814W_FWHM_ARCSEC = 0.095


class CosmosSample:
    """The galaxies of a ``RealGalaxyCatalog`` named by IDENT, with their catalog rows.

    ``catalog``/``fits_catalog``: local paths of the catalog and of its ``_fits`` companion (for
    flux_radius); the image, PSF and noise files sit beside the catalog (the layout
    :func:`galbench.data.download.fetch` gives them).
    """

    def __init__(self, catalog: str | Path, fits_catalog: str | Path, ids: tuple[Any, ...],
                 where: str) -> None:
        from astropy.io import fits

        catalog = Path(catalog)
        self.rgc = galsim.RealGalaxyCatalog(catalog.name, dir=str(catalog.parent))
        table = fits.getdata(catalog)
        extra = fits.getdata(fits_catalog)
        index = {int(ident): k for k, ident in enumerate(table["IDENT"])}
        extra_index = {int(ident): k for k, ident in enumerate(extra["IDENT"])}
        missing = [i for i in ids if int(i) not in index or int(i) not in extra_index]
        if missing:
            raise TaskSpecError(f"{where}.ids: IDENT(s) {missing[:5]} are not in {catalog.name}")
        self.ids = tuple(int(i) for i in ids)
        self.index = np.array([index[i] for i in self.ids])
        self.mag = np.asarray(table["MAG"], dtype=np.float64)[self.index]
        rows = np.array([extra_index[i] for i in self.ids])
        pixel = np.asarray(table["PIXEL_SCALE"], dtype=np.float64)[self.index]
        self.flux_radius_arcsec = np.asarray(extra["flux_radius"], dtype=np.float64)[rows] * pixel
        self._galaxies: dict[int, galsim.RealGalaxy] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def galaxy(self, k: int) -> galsim.RealGalaxy:
        """Galaxy ``k`` of the sample (flux 1 in the catalog's units), built once per process."""
        if k not in self._galaxies:
            self._galaxies[k] = galsim.RealGalaxy(self.rgc, index=int(self.index[k]))
        return self._galaxies[k]


class _CosmosRecipe(RealRecipe):
    """Shared set-up: the sample, the task's instrument and stamp."""

    def __init__(self, task: TaskSpec, split: str | None = None,
                 sources: Mapping[str, Any] | None = None) -> None:
        super().__init__(task, split, sources)
        p = self.params
        for key in ("catalog", "fits_catalog"):
            if p.get(key) not in self.spec.sources:
                raise TaskSpecError(f"{self.where}.params.{key}: expected one of the split's sources")
        if not self.spec.ids:
            raise TaskSpecError(f"{self.where}.ids: list the catalog IDENTs the split uses")
        self.sample = CosmosSample(self.sources[p["catalog"]], self.sources[p["fits_catalog"]],
                                   self.spec.ids, self.where)
        colour = p.get("i_minus_h", 0.0)
        if not isinstance(colour, (int, float)) or isinstance(colour, bool):
            raise TaskSpecError(f"{self.where}.params.i_minus_h: expected a number (AB mag)")
        #: The magnitude each galaxy is drawn at, in the task's band.
        self.mag = self.sample.mag - float(colour)
        self.instrument = get_instrument(task.simulation.instrument)
        c, h, w = task.image_shape
        if c != 1:
            raise TaskSpecError(f"{task.source}.image.shape: COSMOS recipes render one band, got C={c}")
        self.height, self.width = h, w
        self.jitter = float(task.simulation.params.get("centroid_jitter", 0.0))

    def draw(self, k: int, rotation: float, offset: tuple[float, float]) -> np.ndarray:
        """Galaxy ``k`` at its magnitude in the task's band, rotated by ``rotation`` degrees,
        through the task's PSF, ``offset`` pixels from the stamp centre, e-/s."""
        flux = float(self.instrument.flux_from_mag(self.mag[k]))
        light = self.sample.galaxy(k).withFlux(flux).rotate(rotation * galsim.degrees)
        profile = galsim.Convolve(light, self.instrument.galsim_psf())
        return profile.drawImage(
            nx=self.width, ny=self.height, scale=self.instrument.pixel_scale_arcsec,
            offset=offset, dtype=np.float64,
        ).array  # fmt: skip


@RECIPES.register("cosmos_blends")
class CosmosBlendRecipe(_CosmosRecipe):
    """Blends of two real COSMOS galaxies, scored like deblending@1's simulated blends."""

    SOURCES = ("central", "companion")
    columns = {
        **PAIR_COLUMNS,
        "ident_central": "int64",
        "ident_companion": "int64",
        "rotation_central": "float64",
        "rotation_companion": "float64",
        "flux_radius_central": "float64",
        "flux_radius_companion": "float64",
        **BLEND_COLUMNS,
    }
    #: Pair draws before giving up on the flux-ratio condition (a sample spanning < 2.5 mag
    #: accepts nearly every pair; this guards against an id list that cannot satisfy it).
    MAX_TRIES = 1000

    def __init__(self, task: TaskSpec, split: str | None = None,
                 sources: Mapping[str, Any] | None = None) -> None:
        super().__init__(task, split, sources)
        p, where = task.simulation.params, task.source
        self.flux_ratio = uniform_range(p, "flux_ratio", where)
        self.separation = uniform_range(p, "separation", where)
        if len(self.sample) < 2:
            raise TaskSpecError(f"{self.where}.ids: a blend needs at least two galaxies")

    def target_arrays(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"isolated": ((len(self.SOURCES), 1, self.height, self.width), "<f4")}

    def pick_pair(self, rng: np.random.Generator) -> tuple[int, int, float]:
        lo, hi = self.flux_ratio
        for _ in range(self.MAX_TRIES):
            a, b = rng.choice(len(self.sample), size=2, replace=False)
            central, companion = (a, b) if self.mag[a] <= self.mag[b] else (b, a)
            ratio = 10 ** (-0.4 * (self.mag[companion] - self.mag[central]))
            if lo <= ratio <= hi:
                return int(central), int(companion), float(ratio)
        raise TaskSpecError(
            f"{self.where}: no pair of the listed galaxies has a flux ratio in [{lo}, {hi}] "
            f"after {self.MAX_TRIES} draws"
        )

    def render_index(self, seed: np.random.SeedSequence, index: int) -> RenderedObject:
        truth_seed, noise_seed = seed.spawn(2)
        rng = np.random.default_rng(truth_seed)
        central, companion, ratio = self.pick_pair(rng)
        separation = rng.uniform(*self.separation)
        angle = rng.uniform(0.0, 360.0)
        dx, dy = rng.uniform(-self.jitter, self.jitter, size=2)
        rotations = rng.uniform(0.0, 360.0, size=2)
        sep_px = separation / self.instrument.pixel_scale_arcsec
        a = math.radians(angle)
        isolated = np.stack([
            self.draw(central, rotations[0], (dx, dy)),
            self.draw(companion, rotations[1], (dx + sep_px * math.cos(a), dy + sep_px * math.sin(a))),
        ])  # fmt: skip
        s = self.sample
        truth = {
            "mag": float(self.mag[central]),
            "mag_companion": float(self.mag[companion]),
            "flux_ratio": ratio,
            "separation": separation,
            "angle": angle,
            "dx": dx,
            "dy": dy,
            "ident_central": s.ids[central],
            "ident_companion": s.ids[companion],
            "rotation_central": float(rotations[0]),
            "rotation_companion": float(rotations[1]),
            "flux_radius_central": float(s.flux_radius_arcsec[central]),
            "flux_radius_companion": float(s.flux_radius_arcsec[companion]),
        }
        # Bosch+18's blendedness assumes noiseless models; real stamps carry their HST noise.
        return finish_blend(self.instrument, isolated, truth, noise_seed, positive_part=True)


def intrinsic_half_light_radius_px(flux_radius_arcsec: np.ndarray | float, pixel_scale: float,
                                   psf_fwhm_arcsec: float = ACS_F814W_FWHM_ARCSEC) -> np.ndarray:
    """SExtractor's flux_radius (arcsec, through the ACS PSF) as an intrinsic half-light radius
    in pixels of ``pixel_scale``: the PSF's half-light radius (FWHM/2 for a Gaussian) removed in
    quadrature, floored at a tenth of the observed radius for unresolved objects."""
    r = np.asarray(flux_radius_arcsec, dtype=np.float64)
    intrinsic = np.sqrt(np.maximum(r**2 - (psf_fwhm_arcsec / 2) ** 2, (0.1 * r) ** 2))
    return intrinsic / pixel_scale


@RECIPES.register("cosmos_galaxies")
class CosmosGalaxyRecipe(_CosmosRecipe):
    """Single real COSMOS galaxies for morphometry@1, with magnitude and size as truth."""

    columns = {
        "mag": "float64",
        "log10_r_half": "float64",
        "flux_radius": "float64",
        "ident": "int64",
        "rotation": "float64",
        "dx": "float64",
        "dy": "float64",
        "stamp_flux_fraction": "float64",
        "snr": "float64",
    }

    def __init__(self, task: TaskSpec, split: str | None = None,
                 sources: Mapping[str, Any] | None = None) -> None:
        super().__init__(task, split, sources)
        if task.split(split).n != len(self.sample):
            raise TaskSpecError(
                f"{self.where}.n: {task.split(split).n} objects but {len(self.sample)} ids; "
                "object i is galaxy ids[i]"
            )

    def render_index(self, seed: np.random.SeedSequence, index: int) -> RenderedObject:
        truth_seed, noise_seed = seed.spawn(2)
        rng = np.random.default_rng(truth_seed)
        rotation = rng.uniform(0.0, 360.0)
        dx, dy = rng.uniform(-self.jitter, self.jitter, size=2)
        noiseless = self.draw(index, rotation, (dx, dy))
        s = self.sample
        pixel = self.instrument.pixel_scale_arcsec
        truth = {
            "mag": float(self.mag[index]),
            "log10_r_half": float(np.log10(intrinsic_half_light_radius_px(
                s.flux_radius_arcsec[index], pixel))),
            "flux_radius": float(s.flux_radius_arcsec[index]),
            "ident": s.ids[index],
            "rotation": rotation,
            "dx": dx,
            "dy": dy,
            "stamp_flux_fraction": float(noiseless.sum() / self.instrument.flux_from_mag(self.mag[index])),
            "snr": self.instrument.snr(noiseless),
        }
        image = self.instrument.add_noise(noiseless, galsim_deviate(noise_seed))
        return RenderedObject(image=image.astype(np.float32)[None], truth=truth)
