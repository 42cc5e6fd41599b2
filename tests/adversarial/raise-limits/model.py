import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import resource
        resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        return np.zeros((len(images), 8))
