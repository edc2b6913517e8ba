"""Images on disk under content-addressed names.

A file is named after the sha256 of its bytes (`outputs/ab/abcdef....png`), never after a prompt or an
upload's filename: names leak nothing, need no escaping, and storing the same bytes twice keeps one
file. Writes go to a temporary file in the target directory, are flushed to disk, then renamed into
place, so a reader (or a crash) never sees a half-written image. The calls block on disk I/O; from the
event loop, run them in a thread.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

KINDS = frozenset({"outputs", "inputs"})
"""Generated images, and uploaded input images."""
SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")


@dataclass(frozen=True)
class StoredFile:
    path: str
    """Relative to the store's root, with forward slashes, as the database records it."""
    sha256: str
    size: int


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes, suffix: str, kind: str = "outputs") -> StoredFile:
        """Store `data` as `<kind>/<first two hex digits>/<sha256><suffix>`; the same bytes again are a no-op."""
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(sorted(KINDS))}")
        if not SUFFIX.fullmatch(suffix):
            raise ValueError(f"suffix {suffix!r} is not a dot and 1 to 8 lowercase letters or digits, like '.png'")
        digest = hashlib.sha256(data).hexdigest()
        relative = f"{kind}/{digest[:2]}/{digest}{suffix}"
        target = self.path_of(relative)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, data)
        return StoredFile(path=relative, sha256=digest, size=len(data))

    def path_of(self, relative: str) -> Path:
        """The absolute path of a stored file; refuses paths that would leave the root."""
        parts = PurePosixPath(relative).parts
        if not parts or parts[0] == "/" or ".." in parts:
            raise ValueError(f"{relative!r} is not a path inside the file store")
        return self.root.joinpath(*parts)

    def read(self, relative: str) -> bytes:
        return self.path_of(relative).read_bytes()

    def holds(self, relative: str) -> bool:
        return self.path_of(relative).is_file()

    def restore(self, relative: str, data: bytes) -> None:
        """Write a file another store kept, under its own name; bytes that do not match the name are refused."""
        name = PurePosixPath(relative).name
        digest = hashlib.sha256(data).hexdigest()
        if not name.startswith(digest) or SUFFIX.fullmatch(name[len(digest) :]) is None:
            raise ValueError(f"{relative!r} does not name these bytes (sha256 {digest})")
        target = self.path_of(relative)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(target, data)


def _write_atomically(target: Path, data: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
