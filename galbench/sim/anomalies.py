"""Normal bulge+disk galaxies and, in a stated fraction of the evaluation splits, anomalies.

The recipe of anomaly@1, after Margalef-Bentabol et al. (2020): a model of "normal" galaxies is
trained on smooth bulge+disk profiles only, and must flag what it cannot explain. Normal objects
are exactly :class:`~galbench.sim.bulge_disk.BulgeDiskRecipe` galaxies (same priors, PSF and
noise as morphometry@1). An anomalous object is a normal host galaxy plus one of:

``merger``
    a close companion: a second bulge+disk galaxy 0-1.5 mag fainter (flux ratio 1:1 to 1:4, the
    usual major-merger range) at a projected separation of ``companion_sep_px`` pixels.
``clumpy``
    3-8 unresolved star-forming clumps (point sources before the PSF) placed on the disk's light
    profile, each holding ``clump_flux_fraction`` of the host's flux: 3-10%, around the 8% limit
    Guo et al. (2015) used to define UV clumps (clumps are fainter in the rest-frame optical
    F160W probes at z < 2, so the range reaches below it).
``ring``
    a Gaussian-profile elliptical annulus (a collisional or resonance ring) of major-axis radius
    1.5-3x the disk's half-light radius, width 10-25% of that radius and 20-60% of the host's
    flux, sharing the disk's axis ratio and PA; ring hosts have q_disk >= 0.4, since an edge-on
    ring is not recognisable as one.
``cosmic_rays``
    1-4 cosmic-ray tracks 1-8 pixels long left in the image after the PSF and noise (so sharper
    than any real source), peak 20-500x the sky sigma per pixel (log-uniform).
``satellite_trail``
    a straight trail through a point within 16 pixels of the centre, Gaussian cross-section of
    FWHM 2.5 px, peak 3-30x the sky sigma (log-uniform).
``bad_column``
    a detector column (within 24 px of the centre), in full or from a random row to the edge,
    offset by +-5-50x the sky sigma (hot or cold; log-uniform amplitude).

The host galaxy's truth (``mag`` etc.) is that of the host alone; the extra light is additive
and described by the kind's columns (NaN where not applicable). Anomalies appear in a split with
probability ``anomaly_fraction[split]`` per object (splits not listed there, such as the hidden
challenge split, use the test fraction), and the kinds are equally likely.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import galsim
import numpy as np

from galbench.errors import TaskSpecError
from galbench.sim.bulge_disk import BulgeDiskRecipe, disk_light_offsets
from galbench.sim.recipes import RECIPES, RenderedObject, galsim_deviate
from galbench.tasks import TaskSpec

#: The kinds this recipe can draw, in the order their codes (1, 2, ...) are assigned when a task
#: lists them all; a task's ``kinds`` parameter chooses and orders the ones it uses.
KINDS = ("merger", "clumpy", "ring", "cosmic_rays", "satellite_trail", "bad_column")

_NAN = float("nan")


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


@RECIPES.register("anomaly")
class AnomalyRecipe(BulgeDiskRecipe):
    """Bulge+disk galaxies (``BulgeDiskRecipe`` parameters), plus ``kinds`` (list of names from
    :data:`KINDS`) and ``anomaly_fraction`` (table: split name -> probability; must hold
    ``test``)."""

    columns = {
        **BulgeDiskRecipe.columns,
        "is_anomaly": "int64",
        "anomaly_kind": "int64",
        "companion_mag": "float64",
        "companion_sep_px": "float64",
        "n_clumps": "int64",
        "clump_flux_fraction": "float64",
        "ring_radius_px": "float64",
        "ring_flux_fraction": "float64",
        "artifact_peak_sigma": "float64",
    }

    def __init__(self, task: TaskSpec, split: str | None = None) -> None:
        super().__init__(task, split)
        p, where = task.simulation.params, task.source
        kinds = p.get("kinds")
        if (
            not isinstance(kinds, (list, tuple))
            or not kinds
            or any(k not in KINDS for k in kinds)
            or len(set(kinds)) != len(kinds)
        ):
            raise TaskSpecError(
                f"{where}.simulation.params.kinds: expected a list of distinct names from "
                f"{list(KINDS)}, got {kinds!r}"
            )
        self.kinds = tuple(kinds)
        fractions = p.get("anomaly_fraction")
        if (
            not isinstance(fractions, Mapping)
            or "test" not in fractions
            or not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in fractions.values())
        ):
            raise TaskSpecError(
                f"{where}.simulation.params.anomaly_fraction: expected a table of split name -> "
                f"probability in [0, 1] holding 'test', got {fractions!r}"
            )
        key = split if split in fractions else "test"
        self.fraction = float(fractions[key])

    # -- the extra light of each kind -----------------------------------------------------------

    def _companion(self, rng: np.random.Generator, host: dict, extra: dict) -> galsim.GSObject:
        companion = self.sample_truth(rng)
        companion["mag"] = host["mag"] + rng.uniform(0.0, 1.5)
        companion["flux"] = float(self.instrument.flux_from_mag(companion["mag"]))
        sep = rng.uniform(6.0, 20.0)
        phi = rng.uniform(0.0, 2.0 * math.pi)
        extra["companion_mag"] = companion["mag"]
        extra["companion_sep_px"] = sep
        scale = self.instrument.pixel_scale_arcsec
        return self.galaxy(companion).shift(sep * math.cos(phi) * scale, sep * math.sin(phi) * scale)

    def _clumps(self, rng: np.random.Generator, host: dict, extra: dict) -> galsim.GSObject:
        k = int(rng.integers(3, 9))
        fractions = rng.uniform(0.03, 0.10, size=k)
        extra["n_clumps"] = k
        extra["clump_flux_fraction"] = float(fractions.sum())
        scale = self.instrument.pixel_scale_arcsec
        clumps = [
            galsim.DeltaFunction(flux=float(f * host["flux"])).shift(dx * scale, dy * scale)
            for f, (dx, dy) in zip(
                fractions, disk_light_offsets(rng, 10.0 ** host["log10_r_disk"], host["q_disk"], host["pa"], k)
            )
        ]
        return galsim.Add(clumps)

    def _ring(self, rng: np.random.Generator, host: dict, extra: dict) -> galsim.GSObject:
        radius = float(np.clip(rng.uniform(1.5, 3.0) * 10.0 ** host["log10_r_disk"], 4.0, 24.0))
        width = max(rng.uniform(0.10, 0.25) * radius, 0.8)
        fraction = rng.uniform(0.2, 0.6)
        extra["ring_radius_px"] = radius
        extra["ring_flux_fraction"] = fraction
        # Drawn analytically on a 2x oversampled grid (GalSim has no ring profile), centred on
        # the grid's true centre as InterpolatedImage assumes.
        over = 2
        size = over * max(self.height, self.width)
        coords = (np.arange(size) - (size - 1) / 2.0) / over
        x, y = np.meshgrid(coords, coords)
        pa = math.radians(host["pa"])
        along = x * math.cos(pa) + y * math.sin(pa)
        across = -x * math.sin(pa) + y * math.cos(pa)
        rho = np.hypot(along, across / host["q_disk"])
        ring = np.exp(-0.5 * ((rho - radius) / width) ** 2)
        scale = self.instrument.pixel_scale_arcsec / over
        return galsim.InterpolatedImage(
            galsim.ImageD(ring, scale=scale), flux=fraction * host["flux"], normalization="flux"
        )

    def _cosmic_rays(self, rng: np.random.Generator, extra: dict) -> np.ndarray:
        layer = np.zeros((self.height, self.width))
        peak = 0.0
        for _ in range(int(rng.integers(1, 5))):
            amplitude = _log_uniform(rng, 20.0, 500.0)
            peak = max(peak, amplitude)
            length = rng.uniform(1.0, 8.0)
            angle = rng.uniform(0.0, math.pi)
            x0, y0 = rng.uniform(0, self.width), rng.uniform(0, self.height)
            t = np.linspace(0.0, length, max(2, int(length * 2) + 1))
            cols = np.clip((x0 + t * math.cos(angle)).astype(int), 0, self.width - 1)
            rows = np.clip((y0 + t * math.sin(angle)).astype(int), 0, self.height - 1)
            hit = np.zeros_like(layer, dtype=bool)
            hit[rows, cols] = True
            layer[hit] += amplitude * self.instrument.sky_sigma
        extra["artifact_peak_sigma"] = peak
        return layer

    def _trail(self, rng: np.random.Generator, extra: dict) -> np.ndarray:
        amplitude = _log_uniform(rng, 3.0, 30.0)
        angle = rng.uniform(0.0, math.pi)
        cx = (self.width - 1) / 2.0 + rng.uniform(-16.0, 16.0)
        cy = (self.height - 1) / 2.0 + rng.uniform(-16.0, 16.0)
        rows, cols = np.mgrid[0 : self.height, 0 : self.width]
        distance = np.abs(-(cols - cx) * math.sin(angle) + (rows - cy) * math.cos(angle))
        sigma = 2.5 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        extra["artifact_peak_sigma"] = amplitude
        return amplitude * self.instrument.sky_sigma * np.exp(-0.5 * (distance / sigma) ** 2)

    def _bad_column(self, rng: np.random.Generator, extra: dict) -> np.ndarray:
        amplitude = _log_uniform(rng, 5.0, 50.0) * (1.0 if rng.uniform() < 0.5 else -1.0)
        column = int(rng.integers(self.width // 2 - 24, self.width // 2 + 24))
        first_row = 0 if rng.uniform() < 0.5 else int(rng.integers(0, self.height))
        layer = np.zeros((self.height, self.width))
        layer[first_row:, column] = amplitude * self.instrument.sky_sigma
        extra["artifact_peak_sigma"] = amplitude
        return layer

    # -- one object ---------------------------------------------------------------------------

    def render(self, seed: np.random.SeedSequence) -> RenderedObject:
        truth_seed, noise_seed, anomaly_seed = seed.spawn(3)
        truth = self.sample_truth(np.random.default_rng(truth_seed))
        rng = np.random.default_rng(anomaly_seed)
        code = int(rng.integers(len(self.kinds))) + 1 if rng.uniform() < self.fraction else 0
        kind = self.kinds[code - 1] if code else None
        extra: dict = {
            "is_anomaly": int(code > 0),
            "anomaly_kind": code,
            "companion_mag": _NAN,
            "companion_sep_px": _NAN,
            "n_clumps": 0,
            "clump_flux_fraction": _NAN,
            "ring_radius_px": _NAN,
            "ring_flux_fraction": _NAN,
            "artifact_peak_sigma": _NAN,
        }
        if kind == "ring":
            truth["q_disk"] = rng.uniform(max(0.4, self.ranges["q_disk"][0]), self.ranges["q_disk"][1])

        host = self.galaxy(truth)
        light = host
        if kind == "merger":
            light = host + self._companion(rng, truth, extra)
        elif kind == "clumpy":
            light = host + self._clumps(rng, truth, extra)
        elif kind == "ring":
            light = host + self._ring(rng, truth, extra)
        noiseless = self.draw(light, truth)
        host_only = noiseless if light is host else self.draw(host, truth)
        truth["stamp_flux_fraction"] = float(host_only.sum() / truth["flux"])
        truth["snr"] = self.snr(noiseless)
        image = self.add_noise(noiseless, galsim_deviate(noise_seed))
        if kind == "cosmic_rays":
            image = image + self._cosmic_rays(rng, extra)
        elif kind == "satellite_trail":
            image = image + self._trail(rng, extra)
        elif kind == "bad_column":
            image = image + self._bad_column(rng, extra)
        truth.update(extra)
        return RenderedObject(image=image.astype(np.float32)[None], truth=truth)
