import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import os
        os.kill(os.getppid(), 0)
        return np.zeros((len(images), 8))
