"""Galaxy Zoo DECaLS rings (rings@1): the recipe that cuts its real splits, and how they were picked.

Source (``gz_decals_rings*`` in ``galbench/data/remote_files.toml``): the 470 galaxies of
zoobot's ring example (Walmsley et al. 2023, JOSS 8, 5312), images and volunteer votes from
Galaxy Zoo DECaLS (Walmsley et al. 2022, MNRAS 509, 3966):

- ``images/<id_str>.png``: 424x424 8-bit RGB colour composites of the DECaLS g, r, z images, made
  for volunteers (a non-linear display stretch; each cutout's pixel scale was set from the
  galaxy's size, so pixels are not a fixed angle on the sky);
- ``example_ring_catalog_basic.csv``: ``id_str``, ``ring`` (0/1, 235 each) and three volunteer
  vote fractions (``smooth-or-featured_featured-or-disk``, ``disk-edge-on_no``,
  ``has-spiral-arms_no``; the sample was selected as featured, face-on and mostly without
  spiral arms, so each fraction lies in a narrow range).

Image of object ``i`` (the ``ids[i]`` of its split): the PNG's central 384x384 pixels (20 px
trimmed from each side: the galaxy fills the cutout's centre), binned 3x3 to 128x128 by exact
block means: the integer sum of the nine uint8 values divided by 9 * 255, so values lie in
[0, 1] and are bit-identical on every machine (no resampling filter, no float accumulation
order). Channels are the PNG's R, G, B planes in that order, float32 ``[3, 128, 128]``.

Catalog row: ``label`` (1 ring, 0 non-ring: the index into the task's ``classes``),
``id_str`` (the Galaxy Zoo DECaLS id, as listed in the split's ``ids``), ``catalog_row`` (its
0-based row in the source CSV), and the three vote fractions (strata).

:func:`pick_splits` is the seeded, class-stratified draw that made the id lists committed in
``tasks/rings.toml``; this prints them as the TOML lines pasted there::

    python -c "import sys, galbench.real.gz_rings as g; print(g.splits_toml(g.pick_splits(
        g.read_catalog(sys.argv[1]))), end='')" example_ring_catalog_basic.csv
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from galbench.errors import GalbenchError, TaskSpecError
from galbench.sim.recipes import RECIPES, RealRecipe, RenderedObject

CATALOG_KEY = "gz_decals_rings/example_ring_catalog_basic.csv"
IMAGE_KEY = "gz_decals_rings/images/{id}.png"
PNG_SIZE = 424
#: Source CSV column -> catalog column of the split.
FRACTION_COLUMNS: Mapping[str, str] = {
    "smooth-or-featured_featured-or-disk_fraction": "featured_fraction",
    "disk-edge-on_no_fraction": "not_edge_on_fraction",
    "has-spiral-arms_no_fraction": "no_spiral_arms_fraction",
}
#: The draw of tasks/rings.toml: split sizes per class (non-ring, ring) and the train blocks
#: whose ends are the nested label budgets.
SPLIT_SEED = 20223966
TEST_PER_CLASS = 100
VAL_PER_CLASS = 35
TRAIN_BUDGETS = (10, 50, 100, 200)


class RingsFormatError(GalbenchError, ValueError):
    """A source file of rings@1 does not have the expected columns, ids or image shape."""


def image_key(object_id: str) -> str:
    """The remote_files key of one galaxy's PNG."""
    return IMAGE_KEY.format(id=object_id)


def read_catalog(path: str | Path) -> list[dict[str, str]]:
    """The source CSV as rows of strings (file order), checking its columns."""
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("id_str", "ring", *FRACTION_COLUMNS) if c not in (reader.fieldnames or [])]
        if missing:
            raise RingsFormatError(f"{path}: missing column(s) {missing} (has {reader.fieldnames})")
        return list(reader)


def png_to_image(path: str | Path, crop: int = 384, block: int = 3) -> np.ndarray:
    """A GZ DECaLS PNG as float32 ``[3, crop/block, crop/block]`` in [0, 1]: the central
    ``crop`` x ``crop`` pixels, block-averaged exactly (integer sums / (block^2 * 255))."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode != "RGB" or im.size != (PNG_SIZE, PNG_SIZE):
            raise RingsFormatError(
                f"{path}: expected a {PNG_SIZE}x{PNG_SIZE} RGB PNG, got {im.mode} {im.size[0]}x{im.size[1]}"
            )
        pixels = np.asarray(im, dtype=np.uint8)  # [H, W, 3]
    if crop % block or crop > PNG_SIZE or (PNG_SIZE - crop) % 2:
        raise ValueError(f"crop {crop} must be <= {PNG_SIZE}, even-trimmed and a multiple of block {block}")
    start = (PNG_SIZE - crop) // 2
    cut = pixels[start : start + crop, start : start + crop].astype(np.int64)
    side = crop // block
    sums = cut.reshape(side, block, side, block, 3).sum(axis=(1, 3))  # exact integers
    return (sums / float(block * block * 255)).astype(np.float32).transpose(2, 0, 1).copy()


@RECIPES.register("gz_decals_rings")
class GZDecalsRingsRecipe(RealRecipe):
    """Object ``i`` of a rings@1 split: the galaxy ``spec.ids[i]``, its PNG cut and binned as
    the module docstring says, and its catalog row. No randomness: the split seed is unused.

    Task parameters (``[simulation.params]``): ``classes`` (``["non_ring", "ring"]``), ``crop``
    and ``block`` (pixels), with ``image.shape == [3, crop/block, crop/block]``.
    """

    columns = {
        "label": "int64",
        "id_str": "str",
        "catalog_row": "int64",
        "featured_fraction": "float64",
        "not_edge_on_fraction": "float64",
        "no_spiral_arms_fraction": "float64",
    }

    def __init__(self, task: Any, split: str | None = None,
                 sources: Mapping[str, Any] | None = None) -> None:
        super().__init__(task, split, sources)
        params = task.simulation.params
        self.crop = int(params.get("crop", 384))
        self.block = int(params.get("block", 3))
        side = self.crop // self.block
        if tuple(task.image_shape) != (3, side, side):
            raise TaskSpecError(
                f"{task.id}.image.shape: {list(task.image_shape)} does not match crop {self.crop} "
                f"/ block {self.block} (expected [3, {side}, {side}])"
            )
        if self.spec.ids is None or len(self.spec.ids) != self.spec.n:
            raise TaskSpecError(f"{self.where}: ids must list exactly n = {self.spec.n} galaxies")
        if CATALOG_KEY not in self.spec.sources:
            raise TaskSpecError(f"{self.where}.sources: must include {CATALOG_KEY!r}")
        missing = [i for i in self.spec.ids if image_key(str(i)) not in self.spec.sources]
        if missing:
            raise TaskSpecError(f"{self.where}.sources: no image key for id(s) {missing[:5]}")
        path = self.sources[CATALOG_KEY]
        rows = read_catalog(path)
        by_id = {row["id_str"]: (k, row) for k, row in enumerate(rows)}
        unknown = [i for i in self.spec.ids if str(i) not in by_id]
        if unknown:
            raise RingsFormatError(f"{path}: no row for id_str {unknown[:5]} ({self.where}.ids)")
        self._rows = [by_id[str(i)] for i in self.spec.ids]

    def render_index(self, seed: np.random.SeedSequence, index: int) -> RenderedObject:
        object_id = str(self.spec.ids[index])
        row_number, row = self._rows[index]
        ring = row["ring"].strip()
        if ring not in ("0", "1"):
            raise RingsFormatError(f"{self.sources[CATALOG_KEY]}: id_str {object_id}: ring is {ring!r}, expected 0 or 1")
        truth: dict[str, float | int | str] = {"label": int(ring), "id_str": object_id,
                                               "catalog_row": row_number}
        for source_column, column in FRACTION_COLUMNS.items():
            truth[column] = float(row[source_column])
        image = png_to_image(self.sources[image_key(object_id)], self.crop, self.block)
        return RenderedObject(image=image, truth=truth)


def pick_splits(rows: Sequence[Mapping[str, str]], seed: int = SPLIT_SEED) -> dict[str, list[str]]:
    """The class-stratified draw of rings@1's ids: ``{"train", "val", "test": [id_str, ...]}``.

    The ids of each class are sorted (so the draw does not depend on the CSV's row order) and
    permuted by ``numpy.random.default_rng(seed)`` (non-rings first, then rings). Each class's
    permutation gives, in turn, its test, val and train galaxies. Test (100 + 100) and val
    (35 + 35) are then shuffled by the same generator. Train is built in blocks that end at the
    label budgets 10, 50, 100, 200: each block adds half rings and half non-rings, shuffled
    within the block, so every budget prefix is exactly balanced and the budgets are nested.
    """
    rng = np.random.default_rng(seed)
    by_class = {}
    for label in ("0", "1"):
        ids = sorted(r["id_str"] for r in rows if r["ring"].strip() == label)
        by_class[label] = [ids[k] for k in rng.permutation(len(ids))]
    need = TEST_PER_CLASS + VAL_PER_CLASS + TRAIN_BUDGETS[-1] // 2
    if any(len(v) < need for v in by_class.values()):
        raise RingsFormatError(f"need {need} galaxies per class, got {[len(v) for v in by_class.values()]}")

    def shuffled(items: list[str]) -> list[str]:
        return [items[k] for k in rng.permutation(len(items))]

    test = shuffled(by_class["0"][:TEST_PER_CLASS] + by_class["1"][:TEST_PER_CLASS])
    lo, hi = TEST_PER_CLASS, TEST_PER_CLASS + VAL_PER_CLASS
    val = shuffled(by_class["0"][lo:hi] + by_class["1"][lo:hi])
    train: list[str] = []
    start = hi
    previous = 0
    for budget in TRAIN_BUDGETS:
        half = (budget - previous) // 2
        block = by_class["0"][start : start + half] + by_class["1"][start : start + half]
        train += shuffled(block)
        start += half
        previous = budget
    return {"train": train, "val": val, "test": test}


def splits_toml(splits: Mapping[str, Sequence[str]]) -> str:
    """The ``sources`` and ``ids`` lines of each split table, as pasted into tasks/rings.toml."""
    lines = []
    for name, ids in splits.items():
        lines.append(f"# --- {name}: {len(ids)} ids")
        lines.append("sources = [")
        lines.append(f'  "{CATALOG_KEY}",')
        lines += [f'  "{image_key(i)}",' for i in ids]
        lines.append("]")
        lines.append("ids = [")
        lines += [f'  "{i}",' for i in ids]
        lines.append("]")
    return "\n".join(lines) + "\n"

