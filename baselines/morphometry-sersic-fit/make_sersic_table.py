"""Recipe: tabulate the Fourier transform of unit-flux Sersic profiles -> ``sersic_ft.npz``.

    python baselines/morphometry-sersic-fit/make_sersic_table.py

The fitter renders its bulge in Fourier space (see model.py), so it needs the 2-D Fourier
transform of a circular Sersic profile of unit flux and unit half-light radius,

    F_n(kappa) = 2 pi  int_0^inf  I_n(r) J0(kappa r) r dr,     F_n(0) = 1,

for Sersic indices n in the fit's range and dimensionless wavenumbers kappa = k * r_e. An elliptical
profile of major-axis radius r and axis ratio q then has F_n(sqrt((k_u r)^2 + (k_v q r)^2)), with
(k_u, k_v) the wavevector along the major and minor axes.

Only scipy and numpy are used: the table is mathematics, not a property of the simulator.

Quadrature. The profile is replaced by one that is constant on thin annuli [r_i, r_(i+1)], with the
exact flux of each annulus (from the Sersic curve of growth, an incomplete gamma function), and the
transform of that step function is summed exactly with int J0(k r) r dr = r J1(k r) / k. This
conserves flux by construction and copes with the cusp at r = 0 (annuli are log-spaced there); the
annuli become linear (width ``DR_MAX``) at large radius so that kappa * width stays small up to the
largest tabulated kappa. Checked against GalSim's ``Sersic.kValue``: |difference| < 3e-6 for
n = 1, 2, 4 and kappa up to 100, and against the exact exponential (n = 1) transform
(1 + (kappa / b_1)^2)^(-3/2) to 1.4e-6.

Runs in about a minute on one core; the table is ~140 kB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import gammainc, gammaincinv, j1

#: Sersic indices of the table rows. The fit bounds n to [1, 4]; model.py interpolates with
#: Catmull-Rom cubics, which need one row below and two above the bracketing pair.
N_STEP = 0.1
N_GRID = np.round(np.arange(0.9, 4.2 + 1e-9, N_STEP), 6)
#: ln(kappa) grid. The fit needs kappa <= k_cutoff * r_max = 2.86 rad/px * 20 px ~ 57 (the PSF's
#: optical transfer function vanishes beyond k_cutoff); below 1e-4, F = 1 to 1e-8.
LOG_KAPPA = np.linspace(np.log(1e-4), np.log(200.0), 1024)
#: log spacing of annuli near the centre, and their largest (linear) width in units of r_e:
#: kappa_max * DR_MAX = 0.8 keeps the step-function error at the ~1e-6 level.
DLNR = 0.01
DR_MAX = 0.004
#: Flux fraction left out beyond the outermost annulus.
TAIL = 1e-7


def sersic_b(n: float | np.ndarray) -> float | np.ndarray:
    """b_n such that r_e encloses half the light: gamma(2n, b_n) = Gamma(2n) / 2."""
    return gammaincinv(2.0 * np.asarray(n, dtype=float), 0.5)


def sersic_fourier(n: float, kappa: np.ndarray) -> np.ndarray:
    """F_n(kappa) of a unit-flux, unit half-light-radius Sersic profile (see the module doc)."""
    b = sersic_b(n)
    # Outer radius: beyond it the profile holds TAIL of the flux.
    r_max = (gammaincinv(2.0 * n, 1.0 - TAIL) / b) ** n
    r_log = np.exp(np.arange(np.log(1e-7), np.log(DR_MAX / DLNR), DLNR))
    r_lin = np.arange(r_log[-1], r_max + DR_MAX, DR_MAX)[1:]
    r = np.concatenate([[0.0], r_log, r_lin])
    enclosed = gammainc(2.0 * n, b * r ** (1.0 / n))  # curve of growth L(r), L(inf) = 1
    mean_intensity = np.diff(enclosed) / (np.pi * np.diff(r**2))
    # Summation by parts: sum_i I_i [2 pi r J1(k r)/k]_{r_i}^{r_(i+1)}
    #                   = sum_j (I_(j-1) - I_j) 2 pi r_j J1(k r_j)/k  (I_-1 = I_last+1 = 0).
    steps = np.concatenate([[0.0], mean_intensity]) - np.concatenate([mean_intensity, [0.0]])
    out = np.empty(len(kappa))
    for start in range(0, len(kappa), 32):  # blocks keep the J1 matrix at a few tens of MB
        k = np.asarray(kappa[start : start + 32], dtype=float)[:, None]
        out[start : start + 32] = (2.0 * np.pi * r * j1(k * r) / k) @ steps
    return out


def main() -> None:
    kappa = np.exp(LOG_KAPPA)
    table = np.array([sersic_fourier(n, kappa) for n in N_GRID])
    path = Path(__file__).with_name("sersic_ft.npz")
    np.savez(
        path,
        n_grid=N_GRID,
        log_kappa=LOG_KAPPA,
        # float32 keeps the file small; its 6e-8 rounding is far below the quadrature error.
        fourier=table.astype(np.float32),
    )
    print(f"wrote {path}: {table.shape[0]} Sersic indices x {table.shape[1]} wavenumbers")


if __name__ == "__main__":
    main()
