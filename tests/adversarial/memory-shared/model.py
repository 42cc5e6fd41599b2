import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import mmap
        size = 3 * 2**30
        m = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)
        for offset in range(0, size, 4096):
            m[offset] = 1
        return np.zeros((len(images), 8))
