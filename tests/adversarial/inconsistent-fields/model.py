import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        first = not hasattr(self, "seen")
        self.seen = True
        out = {"mean": np.zeros((len(images), 8))}
        if not first:
            out["std"] = np.ones((len(images), 8))
        return out
