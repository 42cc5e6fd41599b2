import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        return np.array([[object()] * 8 for _ in images], dtype=object)
