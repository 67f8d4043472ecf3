from __future__ import annotations
def import_amago(*a, **k):
    raise NotImplementedError
