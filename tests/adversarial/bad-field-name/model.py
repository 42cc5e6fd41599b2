import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        return {"mean": np.zeros((len(images), 8)), "../../evil": np.zeros(len(images))}
