"""Deep baseline for anomaly@1: a convolutional VAE trained on normal galaxies; the score is a
residual or the negative ELBO (config.json says which; the network and the scores are in
galbench.models.autoencoder, shared with ../anomaly-autoencoder, whose train.py trains both)."""

from galbench.models.autoencoder import AutoencoderAnomalyScorer  # noqa: F401
