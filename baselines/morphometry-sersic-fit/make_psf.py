"""Recipe: write the PSF image and the public instrument facts the fitter uses.

    python baselines/morphometry-sersic-fit/make_psf.py

Writes, next to this file:

* ``psf.npy``: the optical PSF of ``hst_wfc3_f160w`` (Airy x Gaussian, *without* the pixel
  response, which the fitter applies itself), sampled at 2x the detector resolution (0.03") on a
  129 x 129 grid centred on the middle sample (+-32 detector pixels), float32, in units of flux
  fraction per sample (sum = encircled energy of the box, 0.98; the missing 2% is the Airy halo
  beyond 1.9", which the fitter deliberately does not renormalise away, so that fitted fluxes stay
  total fluxes). The PSF is band-limited (Airy cutoff D/lambda), so these samples determine its
  transfer function exactly up to the truncation of the halo.
* ``instrument.json``: pixel scale, PSF sampling, AB zero point, exposure time and per-pixel sky
  noise sigma: the public facts of the instrument, as a GALFIT user would know them from the
  image headers. Nothing here comes from a catalog.
"""

from __future__ import annotations

import json
from pathlib import Path

import galsim
import numpy as np

from galbench.sim.instruments import get_instrument

INSTRUMENT = "hst_wfc3_f160w"
OVERSAMPLING = 2
HALF_WIDTH_PX = 32  # detector pixels either side of the centre


def main() -> None:
    inst = get_instrument(INSTRUMENT)
    # Tighter than GalSim's defaults (which err by 3e-7 of the peak here): the image is drawn
    # once and its errors become the fitter's. Tighter still changes it by < 3e-9 of the peak,
    # but maxk_threshold=1e-5 makes GalSim draw through a 32768^2 FFT (12 GB, minutes).
    gsparams = galsim.GSParams(folding_threshold=5e-4, maxk_threshold=1e-4, kvalue_accuracy=1e-6)
    psf = inst.galsim_psf().withGSParams(gsparams)
    size = 2 * HALF_WIDTH_PX * OVERSAMPLING + 1  # odd: the centre falls on a sample
    image = psf.drawImage(
        nx=size, ny=size, scale=inst.pixel_scale_arcsec / OVERSAMPLING, method="no_pixel"
    ).array
    here = Path(__file__).parent
    np.save(here / "psf.npy", image.astype(np.float32))
    facts = {
        "instrument": inst.name,
        "pixel_scale_arcsec": inst.pixel_scale_arcsec,
        "psf_file": "psf.npy",
        "psf_oversampling": OVERSAMPLING,
        "psf_includes_pixel": False,
        "psf_fwhm_arcsec": inst.psf_fwhm_arcsec,
        "zero_point_ab": inst.zero_point_ab,
        "exposure_time_s": inst.noise.exposure_time_s,
        "sky_sigma": inst.sky_sigma,
        "sources": list(inst.sources),
    }
    (here / "instrument.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(f"wrote {here / 'psf.npy'} ({size}x{size}, sum {image.sum():.5f}) and instrument.json")


if __name__ == "__main__":
    main()
