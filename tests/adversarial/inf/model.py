import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        out = np.zeros((len(images), 8))
        out[:, 7] = np.inf
        return out
