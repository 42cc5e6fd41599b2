import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        truth = open("@CATALOG@", "rb").read()
        return np.zeros((len(images), 8)) + len(truth)
