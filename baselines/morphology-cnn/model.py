"""Deep baseline for morphology@1: a timm CNN classifier; the network, its preprocessing
(``asinh(x / softening)``) and the entry point are galbench.models.classifier's, shared with the
transfer@1 baselines. config.json sets ``"tta": true``: predictions average the softmax over the
8 rotations and flips of the stamp, chosen on the validation split (accuracy 0.9146 -> 0.9318,
log loss 0.209 -> 0.175 against a single pass)."""

from galbench.models.classifier import TimmClassifier as CNNClassifier  # noqa: F401
