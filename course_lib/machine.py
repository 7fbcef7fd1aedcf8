"""The machine a benchmark ran on: thread counts, load, CPU model and cache sizes.

Every benchmark prints :func:`machine_summary` before and after its run, because timings
only mean something next to the context they were measured in: how many threads numba and
torch used, what else was running (the load average), and how large the caches are — a
working set that fits in the last-level cache is not served by DRAM, whatever its size
"sounds" like (one course machine has a 32 MiB L3, another 480 MiB).
"""

from __future__ import annotations

import os
from pathlib import Path

_CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")


def _parse_size(text: str) -> int:
    """``"32768K"`` / ``"2M"`` / ``"512"`` (sysfs) -> bytes."""
    text = text.strip().upper()
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def cache_sizes(cache_dir: Path = _CACHE_DIR) -> dict:
    """``{"L1d": bytes, "L2": bytes, "L3": bytes, ...}`` as seen by CPU 0 (Linux sysfs).

    The size is one cache instance's: L1/L2 are usually per core, L3 shared by a group of
    cores.  Empty when the information is not available (another OS, a restricted container).
    """
    sizes = {}
    for index in sorted(cache_dir.glob("index*")):
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = _parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if kind == "Instruction":
            continue
        sizes[f"L{level}" + ("d" if kind == "Data" else "")] = size
    return sizes


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (``"unknown CPU"`` if unavailable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def format_bytes(n: float) -> str:
    """``33554432`` -> ``"32 MiB"`` (binary units, as caches are sized)."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


def machine_summary() -> str:
    """Threads used by numba and torch, CPUs, load average, CPU model and caches, on one line."""
    import numba
    import torch
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    caches = ", ".join(f"{k} {format_bytes(v)}" for k, v in cache_sizes().items())
    return (f"numba {numba.__version__} (threads: {numba.get_num_threads()}), "
            f"torch {torch.__version__} (threads: {torch.get_num_threads()}), "
            f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
            f"{cpu_model()}" + (f" ({caches})" if caches else ""))
