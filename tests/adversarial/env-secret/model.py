import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        import os
        passed = ("OPENBLAS_", "MKL_", "KMP_", "OMP_", "GOTO_", "NVPL_")  # library tuning
        extra = sorted(k for k in os.environ if k not in ['CUDA_VISIBLE_DEVICES', 'HOME', 'LANG', 'LD_LIBRARY_PATH', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS', 'NVIDIA_VISIBLE_DEVICES', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'TMPDIR', 'VECLIB_MAXIMUM_THREADS'] and not k.startswith(passed))
        if extra or "12345" in repr(dict(os.environ)) or "hunter2" in repr(dict(os.environ)):
            raise RuntimeError(f"leaked environment: {extra}")
        return np.zeros((len(images), 8))
