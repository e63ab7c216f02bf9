"""Channel layers: ``base`` holds the contract, each other module or package is one
backend (``redis/`` is a package of one-concern modules).

Nothing here imports Django, so a plain Python process can use a layer directly.
"""
