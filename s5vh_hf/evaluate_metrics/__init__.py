"""`evaluate` metric modules shipped with the package (load them by path)."""

from pathlib import Path

HASHING_MAP_PATH = str(Path(__file__).with_name("hashing_map") / "hashing_map.py")
