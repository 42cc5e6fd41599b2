import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        return np.full((len(images), 8), np.nan)
