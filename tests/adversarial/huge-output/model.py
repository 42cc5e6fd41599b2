import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import sys
        line = "spam " * 200 + "\n"
        for _ in range(50_000):
            sys.stdout.write(line)
        return np.zeros((len(images), 8))
