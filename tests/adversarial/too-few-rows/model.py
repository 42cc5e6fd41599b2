import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        return np.zeros((len(images) - 1, 8))
