"""The model: configuration, modules, the selective scans and their C kernels, folder-safe saving, codes. These files are also the self-contained remote-code copy a saved model carries (they import only each other, with single-dot imports).

Imports nothing: importing a module of this package loads only what that module needs."""
