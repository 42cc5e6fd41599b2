

class Hostile(Exception):
    def __str__(self):
        raise RuntimeError("no message for you")


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        raise Hostile()
