

class Other:
    pass
