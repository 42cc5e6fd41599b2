"""Figures of trained models (PNG, matplotlib Agg, byte-identical for the same inputs).

:mod:`galbench.viz.latent`: a VAE's latent space coloured by physical parameters, and a latent
interpolation strip (``galbench latent``). Importing this package imports no matplotlib or torch;
matplotlib is loaded when a figure is drawn.
"""

from galbench.viz.latent import (
    draw_latent_figures,
    encode_images,
    interpolation_endpoints,
    latent_projection,
    noise_scale,
    plot_interpolation,
    plot_latent_space,
)

__all__ = [
    "draw_latent_figures",
    "encode_images",
    "interpolation_endpoints",
    "latent_projection",
    "noise_scale",
    "plot_interpolation",
    "plot_latent_space",
]
