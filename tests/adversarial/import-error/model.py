import nosuchpackage  # noqa: F401
