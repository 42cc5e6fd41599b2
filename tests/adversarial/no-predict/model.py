

class Model:
    def __init__(self, root):
        pass
