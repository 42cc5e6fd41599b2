import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        if self.__dict__.setdefault("calls", 0) == 1:
            raise RuntimeError(f"boom on a batch of {len(images)}")
        self.calls += 1
        return np.zeros((len(images), 8))
