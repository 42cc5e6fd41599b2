

class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import ctypes
        ctypes.string_at(0)
