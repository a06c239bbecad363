"""The `s5vh` command line: parse, call one library function, print."""

from .main import main

__all__ = ["main"]
