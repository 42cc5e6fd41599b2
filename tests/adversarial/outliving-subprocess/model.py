import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import subprocess, sys
        code = "import time; time.sleep(120)  # @MARKER@"
        subprocess.Popen([sys.executable, "-c", code])
        subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        return np.zeros((len(images), 8))
