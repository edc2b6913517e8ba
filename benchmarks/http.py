"""`python benchmarks/http.py`: the HTTP API benchmark, whose code is `benchmarks/http_load.py`.

This file has the name the issue gives it, which is also the standard library's `http`: a script run as
`python benchmarks/NAME.py` has this folder first on sys.path, so its `import http` (aiohttp's, urllib's) finds
this file. Imported so, it hands the importer the standard library's package in its place and does nothing else.
"""

from __future__ import annotations

import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _standard_library_http() -> object:
    shadowing = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) == HERE]
    for entry in shadowing:
        sys.path.remove(entry)
    del sys.modules["http"]
    try:
        return importlib.import_module("http")
    finally:
        sys.path[0:0] = shadowing


if __name__ == "http":
    sys.modules["http"] = _standard_library_http()  # type: ignore[assignment]
elif __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(HERE))  # this checkout's code, not an installed copy
    from http_load import main

    sys.exit(main())
