import numpy as np


class Model:
    def __init__(self, root):
        self.weights = (root / "weights.pt").read_bytes()

    def predict(self, images):
        return np.zeros((len(images), 8))
