"""Pure domain: entity rules, the event catalogue, hashing and the replay fold.

Nothing here performs I/O or imports infrastructure; a unit test enforces it.
"""
