import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        hoard = []
        while True:
            hoard.append(np.ones(2**24))  # 128 MiB each
