import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import os
        with open(os.path.join(os.environ["TMPDIR"], "big.bin"), "wb") as f:
            f.write(b"x" * 2**21)
        return np.zeros((len(images), 8))
