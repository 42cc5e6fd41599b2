"""On-the-fly augmentation of galaxy stamps: flips, rotations, shifts and zoom, with the applied
parameters returned so that targets can follow.

Conventions (those of the galbench tasks, see ``baselines/morphometry-cnn/train.py``):

- Images are ``[B, C, H, W]`` float tensors, **origin-lower**: row 0 is the bottom of the sky
  image, ``+x`` runs along columns (last axis), ``+y`` along rows (second-to-last axis). All
  channels of a sample get the same transform.
- Positions are offsets in pixels from the stamp centre ``((W - 1) / 2, (H - 1) / 2)``; angles
  are in degrees, **counter-clockwise from +x** (towards +y). ``torch.rot90(x, 1, dims=(-1, -2))``
  is a counter-clockwise quarter turn in this convention: a pixel at ``+x`` of the centre moves
  to ``+y``.
- Each sample's transform is, in this order: a left-right flip (``x -> -x``) if drawn; a
  counter-clockwise rotation by ``angle_deg``; a zoom by ``zoom`` about the stamp centre (``s > 1``
  magnifies); a shift by ``shift_px = (dx, dy)``. A source at offset ``r`` moves to
  ``s * R(angle) @ F @ r + shift`` (see :meth:`AugmentParams.transform_offsets`).
- **Flux is conserved**: the output is the input resampled at the inverse-mapped positions and
  divided by ``s**2`` (the Jacobian of the zoom), so the total flux of an object well inside the
  stamp is unchanged and the surface brightness scales by ``1 / s**2`` - the same object seen
  ``s`` times larger. Light moved out of the stamp is lost; the area moved in is zero
  (``grid_sample`` with ``padding_mode="zeros"``).
- Targets follow with the returned :class:`AugmentParams`: a position angle becomes
  ``pa' = (180 - pa if flip else pa) + angle_deg`` modulo its period
  (:meth:`AugmentParams.transform_angles`), a position ``r`` becomes the formula above
  (:meth:`AugmentParams.transform_offsets`), sizes in pixels scale by ``zoom``; fluxes, axis
  ratios and Sersic indices do not change.

Exact and resampled paths: flips are always exact (``torch.flip``). With ``rotate="d4"`` the
angle is a random multiple of 90 degrees applied exactly with ``rot90`` (square stamps), so a
flip plus a d4 rotation is a permutation of the pixels (the 8 symmetries of the square). With
``rotate=True`` the angle is uniform in [0, 360) and applied by bilinear resampling
(``affine_grid``/``grid_sample``, ``align_corners=False``); that one resampling also applies the
zoom and any shift. Shifts are uniform in ``[-max_shift_px, max_shift_px]`` per axis (sub-pixel,
resampled) or, with ``integer_shift=True``, whole pixels in ``[-floor(max), floor(max)]``, applied
exactly with zero fill when nothing else needs resampling. Zoom factors are log-uniform in
``zoom=(lo, hi)``, so zooming in and out by the same factor are equally likely.

Randomness comes only from the ``torch.Generator`` given (drawn on its device, in a fixed order:
flip, angle, zoom, shift), so one seed gives the same augmentations whatever else runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["Augment", "AugmentParams"]


@dataclass(frozen=True)
class AugmentParams:
    """The transforms applied to a batch of ``B`` samples (CPU tensors).

    ``flip``: bool ``[B]``, left-right flip (``x -> -x``) first; ``angle_deg``: float64 ``[B]``,
    then a counter-clockwise rotation; ``zoom``: float64 ``[B]``, then a magnification about the
    stamp centre; ``shift_px``: float64 ``[B, 2]``, then a shift ``(dx, dy)`` in pixels.
    """

    flip: torch.Tensor
    angle_deg: torch.Tensor
    zoom: torch.Tensor
    shift_px: torch.Tensor

    def __post_init__(self) -> None:
        b = len(self.flip)
        fields = {
            "flip": (self.flip, (b,)),
            "angle_deg": (self.angle_deg, (b,)),
            "zoom": (self.zoom, (b,)),
            "shift_px": (self.shift_px, (b, 2)),
        }
        for name, (value, shape) in fields.items():
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise ValueError(f"AugmentParams.{name} must be a tensor of shape {shape}: {got}")
        if self.flip.dtype != torch.bool:
            raise ValueError(f"AugmentParams.flip must be a bool tensor, got {self.flip.dtype}")
        if not bool((self.zoom > 0).all()):
            raise ValueError("AugmentParams.zoom must be > 0")

    @classmethod
    def make(
        cls,
        n: int,
        *,
        flip: bool | list[bool] | torch.Tensor = False,
        angle_deg: float | list[float] | torch.Tensor = 0.0,
        zoom: float | list[float] | torch.Tensor = 1.0,
        shift_px: tuple[float, float] | list | torch.Tensor = (0.0, 0.0),
    ) -> AugmentParams:
        """Parameters for ``n`` samples, each argument a scalar (the same for all) or per sample."""
        def column(value: object, dtype: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
            t = torch.as_tensor(value, dtype=dtype)
            return t.expand(shape).clone() if t.shape != shape else t.clone()

        return cls(
            flip=column(flip, torch.bool, (n,)),
            angle_deg=column(angle_deg, torch.float64, (n,)),
            zoom=column(zoom, torch.float64, (n,)),
            shift_px=column(shift_px, torch.float64, (n, 2)),
        )

    def __len__(self) -> int:
        return len(self.flip)

    def transform_offsets(self, xy: torch.Tensor) -> torch.Tensor:
        """Where offsets ``xy`` ``[B, 2]`` (pixels from the stamp centre, ``(x, y)``) land:
        ``zoom * R(angle) @ flip(xy) + shift``."""
        xy = torch.as_tensor(xy, dtype=torch.float64)
        x = torch.where(self.flip, -xy[:, 0], xy[:, 0])
        y = xy[:, 1]
        a = torch.deg2rad(self.angle_deg)
        c, s = torch.cos(a), torch.sin(a)
        out = torch.stack([c * x - s * y, s * x + c * y], dim=1) * self.zoom[:, None]
        return out + self.shift_px

    def transform_angles(self, angle_deg: torch.Tensor, period: float = 180.0) -> torch.Tensor:
        """Position angles ``[B]`` (degrees, counter-clockwise from +x) after the transform,
        in ``[0, period)``: ``(180 - pa if flip else pa) + angle_deg``. ``period=180`` for an
        axis (a galaxy's major axis), 360 for a direction."""
        pa = torch.as_tensor(angle_deg, dtype=torch.float64)
        pa = torch.where(self.flip, 180.0 - pa, pa) + self.angle_deg
        return torch.remainder(pa, period)


class Augment:
    """Random flips, rotations, shifts and zoom of ``[B, C, H, W]`` float images.

    ``rotate``: False, True (any angle, bilinear) or ``"d4"`` (multiples of 90 degrees, exact);
    ``flip``: left-right flips with probability 1/2; ``max_shift_px``: largest shift per axis in
    pixels (0: none); ``zoom``: ``(lo, hi)`` range of magnifications (None: none);
    ``integer_shift``: whole-pixel shifts; ``generator``: the only source of randomness (required).
    The module docstring states the conventions. ``augment(images)`` returns a new tensor of the
    same shape, dtype and device; ``augment(images, return_params=True)`` returns
    ``(images, AugmentParams)``.
    """

    def __init__(
        self,
        *,
        rotate: bool | Literal["d4"] = False,
        flip: bool = False,
        max_shift_px: float = 0.0,
        zoom: tuple[float, float] | None = None,
        integer_shift: bool = False,
        generator: torch.Generator,
    ) -> None:
        if rotate not in (False, True, "d4"):
            raise ValueError(f"rotate must be False, True (any angle) or 'd4', got {rotate!r}")
        if not (math.isfinite(max_shift_px) and max_shift_px >= 0):
            raise ValueError(f"max_shift_px must be a finite number >= 0, got {max_shift_px!r}")
        if zoom is not None:
            if len(zoom) != 2 or not (0 < zoom[0] <= zoom[1] < math.inf):
                raise ValueError(f"zoom must be (lo, hi) with 0 < lo <= hi, got {zoom!r}")
            zoom = (float(zoom[0]), float(zoom[1]))
        if not isinstance(generator, torch.Generator):
            raise TypeError("Augment needs generator=torch.Generator() (no global RNG is used)")
        self.rotate = rotate
        self.flip = bool(flip)
        self.max_shift_px = float(max_shift_px)
        self.zoom = zoom
        self.integer_shift = bool(integer_shift)
        self.generator = generator

    def __repr__(self) -> str:
        return (
            f"Augment(rotate={self.rotate!r}, flip={self.flip}, max_shift_px={self.max_shift_px},"
            f" zoom={self.zoom}, integer_shift={self.integer_shift})"
        )

    def sample(self, n: int) -> AugmentParams:
        """Draw parameters for ``n`` samples from the generator (flip, angle, zoom, shift)."""
        g, dev = self.generator, self.generator.device

        def uniform(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=g, device=dev, dtype=torch.float64).cpu()

        flip = uniform(n) < 0.5 if self.flip else torch.zeros(n, dtype=torch.bool)
        if self.rotate == "d4":
            angle = 90.0 * torch.randint(0, 4, (n,), generator=g, device=dev).cpu().double()
        elif self.rotate:
            angle = 360.0 * uniform(n)
        else:
            angle = torch.zeros(n, dtype=torch.float64)
        if self.zoom is not None:
            lo, hi = math.log(self.zoom[0]), math.log(self.zoom[1])
            zoom = torch.exp(lo + (hi - lo) * uniform(n))
        else:
            zoom = torch.ones(n, dtype=torch.float64)
        if self.max_shift_px > 0 and self.integer_shift:
            m = math.floor(self.max_shift_px)
            shift = torch.randint(-m, m + 1, (n, 2), generator=g, device=dev).cpu().double()
        elif self.max_shift_px > 0:
            shift = self.max_shift_px * (2.0 * uniform(n, 2) - 1.0)
        else:
            shift = torch.zeros(n, 2, dtype=torch.float64)
        return AugmentParams(flip=flip, angle_deg=angle, zoom=zoom, shift_px=shift)

    def __call__(
        self, images: torch.Tensor, *, return_params: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, AugmentParams]:
        _check_images(images)
        params = self.sample(len(images))
        out = self.apply(images, params)
        return (out, params) if return_params else out

    def apply(self, images: torch.Tensor, params: AugmentParams) -> torch.Tensor:
        """Apply given parameters (e.g. from :meth:`sample` or :meth:`AugmentParams.make`).

        The path follows this object's settings: with ``rotate="d4"`` the angles must be multiples
        of 90 degrees and are applied exactly; otherwise any non-zero angle is resampled. Shifts are
        exact when ``integer_shift`` is set, every shift is whole and no zoom or resampled rotation
        is needed; otherwise they are resampled.
        """
        _check_images(images)
        if len(params) != len(images):
            raise ValueError(f"{len(params)} augmentation parameters for {len(images)} images")
        out = images.clone()
        flip = params.flip.to(images.device)
        if bool(flip.any()):
            out[flip] = torch.flip(out[flip], dims=[-1])
        angle = params.angle_deg
        if self.rotate == "d4":
            quarters = angle / 90.0
            if not bool((quarters == torch.round(quarters)).all()):
                raise ValueError("rotate='d4' applies multiples of 90 degrees only")
            out = _rot90_each(out, torch.remainder(torch.round(quarters), 4).long())
            angle = torch.zeros_like(angle)
        shift = params.shift_px
        whole = bool((shift == torch.round(shift)).all())
        needs_resample = bool((angle != 0).any()) or bool((params.zoom != 1).any())
        if self.integer_shift and whole and not needs_resample:
            if bool((shift != 0).any()):
                out = _shift_whole(out, shift.long())
            return out
        if needs_resample or bool((shift != 0).any()):
            out = _resample(out, angle, params.zoom, shift)
        return out


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a [B, C, H, W] tensor, got {got}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, got {images.dtype}")


def _rot90_each(images: torch.Tensor, quarters: torch.Tensor) -> torch.Tensor:
    """Rotate sample ``i`` counter-clockwise by ``quarters[i]`` quarter turns (exact)."""
    h, w = images.shape[-2:]
    if h != w and bool((quarters % 2 == 1).any()):
        raise ValueError(f"quarter turns need square stamps, got H={h}, W={w}")
    out = images.clone()
    for q in range(1, 4):
        m = (quarters == q).to(images.device)
        if bool(m.any()):
            # dims (-1, -2): from +x (columns) towards +y (rows), counter-clockwise origin-lower.
            out[m] = torch.rot90(images[m], q, dims=(-1, -2))
    return out


def _shift_whole(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Move sample ``i`` by ``shift[i] = (dx, dy)`` whole pixels (+x columns, +y rows); zeros
    fill the pixels uncovered."""
    h, w = images.shape[-2:]
    out = torch.zeros_like(images)
    for i, (dx, dy) in enumerate(shift.tolist()):
        if abs(dx) >= w or abs(dy) >= h:
            continue
        src_x, dst_x = slice(max(0, -dx), w - max(0, dx)), slice(max(0, dx), w - max(0, -dx))
        src_y, dst_y = slice(max(0, -dy), h - max(0, dy)), slice(max(0, dy), h - max(0, -dy))
        out[i, :, dst_y, dst_x] = images[i, :, src_y, src_x]
    return out


def _resample(
    images: torch.Tensor, angle_deg: torch.Tensor, zoom: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """Rotate (counter-clockwise), zoom about the centre and shift each sample by bilinear
    resampling, dividing by ``zoom**2`` so that flux is conserved."""
    h, w = images.shape[-2:]
    a = torch.deg2rad(angle_deg)
    c, s = torch.cos(a), torch.sin(a)
    # Output offset r (pixels from the centre) samples the input at A @ (r - shift), with
    # A = R(-angle) / zoom the inverse of the forward map zoom * R(angle).
    inv = torch.stack([torch.stack([c, s], -1), torch.stack([-s, c], -1)], -2) / zoom[:, None, None]
    offset = -(inv @ shift[:, :, None])[:, :, 0]
    # affine_grid works in normalised coordinates u = offset / (size / 2) (align_corners=False:
    # u = -1 and 1 are the outer pixel edges, 0 the stamp centre); x is the width axis, y the
    # height axis, both increasing with the index, as our +x and +y do.
    half = torch.tensor([w / 2.0, h / 2.0], dtype=torch.float64)
    theta = torch.empty(len(images), 2, 3, dtype=torch.float64)
    theta[:, :, :2] = inv * half[None, None, :] / half[None, :, None]
    theta[:, :, 2] = offset / half[None, :]
    theta = theta.to(device=images.device, dtype=images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out / (zoom**2).to(device=images.device, dtype=images.dtype)[:, None, None, None]
