"""Channel layers: ``base`` holds the contract, each other module is one backend.

Nothing here imports Django, so a plain Python process can use a layer directly.
"""
