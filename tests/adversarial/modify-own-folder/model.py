import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        with open(self.root / "model.py", "a") as f:
            f.write("# tampered\n")
        return np.zeros((len(images), 8))
