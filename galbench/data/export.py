"""Export a split for astronomers: a FITS image cube and a FITS catalog table."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

from galbench.data.split import Split


def export_fits(split: Split, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``<task>_<split>_images.fits`` and ``<task>_<split>_catalog.fits`` into ``out_dir``.

    The image HDU holds the ``[n, C, H, W]`` cube (FITS axes NAXIS1=W ... NAXIS4=n) with the pixel
    scale, units, instrument, task and split hashes in its header; row ``i`` of the catalog is
    image ``i``. Returns the two paths.
    """
    from galbench.sim.instruments import get_instrument

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    task = split.task
    from galbench.errors import UnknownNameError

    try:
        inst = get_instrument(task.simulation.instrument)
    except UnknownNameError:  # a real-data task (rings@1): survey images, no simulated instrument
        inst = None
    stem = f"{task.name}-v{task.version}_{split.name}" + (f"-first{split.n}" if split.partial else "")

    header = fits.Header()
    header["TASK"] = (task.id, "galbench task id")
    header["SPLIT"] = (split.name, "galbench split")
    header["NOBJ"] = (split.n, "number of objects (axis 4)")
    header["SEED"] = (split.manifest.seed, "split seed")
    header["CONTENT"] = split.manifest.content_sha256  # sha256 of the split data (no room for a comment)
    header["REALDATA"] = (task.split(split.name).real, "cut from public survey data")
    if inst is None:
        header["BUNIT"] = ("", task.image_units[:68])
        header["INSTRUME"] = (task.simulation.instrument, "real survey images")
    else:
        header["BUNIT"] = ("electron/s", task.image_units)
        header["PIXSCALE"] = (inst.pixel_scale_arcsec, "arcsec / pixel")
        header["INSTRUME"] = (inst.name, inst.description[:40])
        header["FILTER"] = (inst.band, "band")
        header["MAGZP"] = (inst.zero_point_ab, "AB magnitude of 1 e-/s")
        header["PSFFWHM"] = (round(inst.psf_fwhm_arcsec, 4), "PSF FWHM on these pixels, arcsec")
        header["SKYSIG"] = (float(f"{inst.sky_sigma:.6g}"), "sky noise per pixel, e-/s")
    images_path = out / f"{stem}_images.fits"
    cube = np.asarray(split.images, dtype=">f4")
    fits.HDUList([fits.PrimaryHDU(data=cube, header=header)]).writeto(images_path, overwrite=True)

    table = Table.from_pandas(split.catalog)
    for t in task.targets:
        if t.unit and t.name in table.colnames:
            table[t.name].description = t.description
    catalog_path = out / f"{stem}_catalog.fits"
    hdu = fits.table_to_hdu(table)
    hdu.header["TASK"] = task.id
    hdu.header["SPLIT"] = split.name
    hdu.header["CONTENT"] = split.manifest.content_sha256[:64]
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(catalog_path, overwrite=True)
    return [images_path, catalog_path]
