import numpy as np


class Model:
    def __init__(self, root):
        self.root = root

    def predict(self, images):
        status = open("/proc/self/status").read()
        caps = {l.split(":")[0]: int(l.split()[1], 16) for l in status.splitlines() if l.startswith("Cap")}
        if caps["CapEff"] or caps["CapPrm"] or caps["CapBnd"]:
            raise RuntimeError(f"capabilities left: {caps}")
        for path in ("/sys/fs/cgroup/pids/cgroup.procs", "/proc/sys/kernel/hostname"):
            try:
                open(path, "w").write("1")
            except OSError:
                continue
            raise RuntimeError(f"could write {path}")
        return np.zeros((len(images), 8))
