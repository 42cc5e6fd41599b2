"""Deep baseline for anomaly@1: a convolutional autoencoder trained on normal galaxies; the
score is a residual between the image and its reconstruction (config.json says which; the
network and the scores are in galbench.models.autoencoder, shared with ../anomaly-vae)."""

from galbench.models.autoencoder import AutoencoderAnomalyScorer  # noqa: F401
