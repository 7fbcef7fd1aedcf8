"""numba kernels, one file per family, each next to (or naming) its NumPy twin.

Kernels are compiled lazily on their first call and cached on disk
(``@njit(cache=True)``, cache directory ``$NUMBA_CACHE_DIR``): never time the first call.
"""
