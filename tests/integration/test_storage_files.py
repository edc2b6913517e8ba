"""The file store on a real directory: content-addressed names, atomic writes, idempotency."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from storage import FileStore, StoredFile

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


def files_under(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


def test_a_file_is_named_after_its_content(store: FileStore) -> None:
    digest = hashlib.sha256(PNG).hexdigest()

    stored = store.put(PNG, ".png")

    assert stored == StoredFile(path=f"outputs/{digest[:2]}/{digest}.png", sha256=digest, size=len(PNG))
    assert store.path_of(stored.path) == store.root / "outputs" / digest[:2] / f"{digest}.png"
    assert store.read(stored.path) == PNG
    assert files_under(store.root) == [stored.path]


def test_uploads_go_under_inputs(store: FileStore) -> None:
    stored = store.put(b"uploaded bytes", ".jpg", kind="inputs")
    assert stored.path.startswith("inputs/") and stored.path.endswith(".jpg")
    assert store.read(stored.path) == b"uploaded bytes"


def test_storing_the_same_bytes_again_keeps_one_untouched_file(store: FileStore) -> None:
    first = store.put(PNG, ".png")
    written = store.path_of(first.path).stat()

    assert store.put(PNG, ".png") == first
    assert store.path_of(first.path).stat().st_mtime_ns == written.st_mtime_ns
    other = store.put(PNG + b"!", ".png")
    assert other.path != first.path
    assert files_under(store.root) == sorted([first.path, other.path])


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rename(source: str, target: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        store.put(PNG, ".png")

    assert files_under(store.root) == []


@pytest.mark.parametrize(
    ("suffix", "kind"),
    [("png", "outputs"), (".PNG", "outputs"), ("./../x", "outputs"), ("", "outputs"), (".png", "../etc")],
)
def test_odd_suffixes_and_kinds_are_refused(store: FileStore, suffix: str, kind: str) -> None:
    with pytest.raises(ValueError):
        store.put(PNG, suffix, kind=kind)
    assert not store.root.exists()


@pytest.mark.parametrize("relative", ["../secret.png", "outputs/../../secret.png", "/etc/passwd", ""])
def test_paths_outside_the_store_are_refused(store: FileStore, relative: str) -> None:
    with pytest.raises(ValueError):
        store.path_of(relative)


def test_a_file_from_another_store_is_restored_under_its_name_and_only_its_own_bytes(
    store: FileStore, tmp_path: Path
) -> None:
    """A host that shares no disk gets the files other hosts made through the database; a name and bytes that do
    not match (a damaged row) are refused, not written."""
    made = FileStore(tmp_path / "elsewhere").put(PNG, ".png")
    assert not store.holds(made.path)
    store.restore(made.path, PNG)
    assert store.holds(made.path) and store.read(made.path) == PNG
    with pytest.raises(ValueError, match="does not name these bytes"):
        store.restore(made.path.replace(".png", ".jpg").replace(made.sha256, "0" * 64), PNG)
    with pytest.raises(ValueError, match="inside the file store"):
        store.restore(f"../{made.sha256}.png", PNG)
    assert files_under(store.root) == [made.path]
