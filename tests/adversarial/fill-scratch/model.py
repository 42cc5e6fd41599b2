import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import os
        for i in range(64):
            with open(os.path.join(os.environ["TMPDIR"], f"junk{i}.bin"), "wb") as f:
                f.write(b"x" * 2**20)
        return np.zeros((len(images), 8))
