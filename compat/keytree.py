"""The tree of awkward keys the compatibility suite uploads, and what s3fetch must make of it.

Each :class:`Item` is one object: its key, its bytes and how it is uploaded. :func:`expected`
applies s3fetch's documented rules (docs/selection.md, "Where files land"; RELIABILITY.md, keys ``a``
and ``a/b``) to a set of stored objects: the files a download of the whole bucket must
leave, and the keys it must report as failed.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from dataclasses import dataclass

MIB = 1024 * 1024
#: Size of each large object (above s3fetch's 16 MiB multipart threshold: fetched in parts).
BIG_SIZE = 40 * MIB
#: Part size of the multipart uploads.
PART_SIZE = 8 * MIB
#: Keys in one folder: more than a 1,000-key list page.
FLAT_KEYS = 1_100
#: Keys in each of two more folders.
FOLDER_KEYS = 150


@dataclass(frozen=True)
class Item:
    """One object of the tree."""

    key: str
    body: bytes
    #: ``put`` (one PUT, no checksum), ``put-crc32`` (one PUT with a CRC32),
    #: ``multipart-crc32`` (parts with CRC32s: a COMPOSITE checksum),
    #: ``multipart-crc32-full`` (a FULL_OBJECT CRC32), ``multipart`` (no checksum).
    kind: str
    #: What the item is there for (shown when it is skipped).
    label: str

    @property
    def sha256(self) -> str:
        """The SHA-256 of the body, hex."""
        return hashlib.sha256(self.body).hexdigest()


def long_key(prefix: str, length: int) -> str:
    """A key of exactly ``length`` bytes: ``prefix`` then segments of at most 200 bytes, so
    that each segment fits a file name (255 bytes) on the servers' disks and on ours.
    """
    segments: list[str] = []
    remaining = length - len(prefix.encode())
    while remaining > 200:  # a 199-byte segment and its "/"
        segments.append(f"seg{len(segments)}-".ljust(199, "x"))
        remaining -= 200
    segments.append(f"seg{len(segments)}-".ljust(remaining, "x")[:remaining])
    key = prefix + "/".join(segments)
    assert len(key.encode()) == length, (len(key.encode()), length)
    return key


def small_body(key: str, index: int) -> bytes:
    """A few hundred bytes (sometimes none) that name their key."""
    line = f"{key}\n".encode()
    size = (index * 337) % 2_000
    return (line * (size // len(line) + 1))[:size]


def build() -> list[Item]:
    """The whole tree, in a fixed order."""
    items: list[Item] = []

    def text(key: str, label: str, kind: str = "put") -> None:
        items.append(Item(key, f"content of {key!r}\n".encode(), kind, label))

    cafe = "unicode/café.txt"
    text(unicodedata.normalize("NFC", cafe), "Unicode NFC (é as one code point)")
    text(unicodedata.normalize("NFD", cafe), "Unicode NFD (e + combining acute), beside its NFC twin")
    text("unicode/日本語/ファイル.txt", "Unicode folder and name")
    text("unicode/emoji-🎉.txt", "a 4-byte UTF-8 character", "put-crc32")
    text("spaces/a file.txt", "spaces")
    text("spaces/ leading space", "a leading space")
    text("spaces/trailing space ", "a trailing space")
    text("spaces/dir with space/inner.txt", "a space in a folder name")
    text("plus/a+b.txt", "+")
    text("plus/c++/x", "+ in a folder name")
    text("percent/a%20b.txt", "%20 written literally")
    text("percent/%2F.txt", "%2F written literally")
    text("percent/100%.txt", "a lone %")
    text("query/what?.txt", "?")
    text("query/a?b=c&d=e", "? & = together")
    text("hash/#1.txt", "# first")
    text("hash/a#b", "# inside")
    text("amp/a&b.txt", "&")
    text("amp/a=b.txt", "=")
    text("xml/<tag> 'q' \"dq\" &amp;.txt", "XML's special characters")
    text(long_key("long/", 1_000), "a 1,000-byte key")
    items.append(Item("empty/zero.bin", b"", "put", "a 0-byte object"))
    items.append(Item("empty/zero-crc32.bin", b"", "put-crc32", "a 0-byte object with a CRC32"))
    items.append(Item("dir/", b"", "put", "a directory marker (0 bytes) with keys under it"))
    text("dir/file.txt", "a key under a directory marker")
    items.append(Item("lonely-marker/", b"", "put", "a directory marker with nothing under it"))
    # `a` beside `a/b`: the file wins, the keys under `a/` are conflicts. `a-1` and `a.txt`
    # sort between `a` and `a/...` ('-' and '.' come before '/').
    text("conflict/a", "a key named like a folder (the file wins)")
    text("conflict/a-1", "a key sorting between `a` and `a/`")
    text("conflict/a.txt", "a key sorting between `a` and `a/`")
    text("conflict/a/b", "a key under a key (a conflict)")
    text("conflict/a/c", "a key under a key (a conflict)")

    rng = random.Random(20261203)
    for key, kind, label in (
        ("big/multipart-crc32.bin", "multipart-crc32", "40 MiB multipart with CRC32 checksums (COMPOSITE)"),
        ("big/multipart-crc32-full.bin", "multipart-crc32-full", "40 MiB multipart with a FULL_OBJECT CRC32"),
        ("big/multipart-plain.bin", "multipart", "40 MiB multipart without checksums"),
    ):
        items.append(Item(key, rng.randbytes(BIG_SIZE), kind, label))

    for i in range(FLAT_KEYS):
        key = f"flat/obj-{i:05d}.txt"
        items.append(Item(key, small_body(key, i), "put-crc32" if i % 2 else "put", "a small object (flat folder)"))
    for folder in ("f1", "f2"):
        for i in range(FOLDER_KEYS):
            key = f"folders/{folder}/obj-{i:04d}.txt"
            items.append(Item(key, small_body(key, i), "put-crc32" if i % 3 == 0 else "put", "a small object"))
    keys = [item.key for item in items]
    assert len(keys) == len(set(keys)), "duplicate keys in the tree"
    return items


@dataclass(frozen=True)
class Expected:
    """What a download of the whole bucket must leave."""

    #: Relative path -> SHA-256 of its bytes.
    files: dict[str, str]
    #: Keys reported as failed (conflicts), each with the error code.
    failed: dict[str, str]
    #: The CLI's exit code.
    exit_code: int


def expected(items: list[Item]) -> Expected:
    """The documented result of ``s3fetch s3://BUCKET/`` over ``items`` (the bucket's root: each
    key is its own relative path).
    """
    keys = {item.key for item in items}
    files: dict[str, str] = {}
    failed: dict[str, str] = {}
    for item in items:
        if item.key.endswith("/"):
            continue  # a directory marker: skipped
        # A key under another key (`a/b` beside `a`) is a conflict: the file `a` wins.
        parts = item.key.split("/")
        if any("/".join(parts[:n]) in keys for n in range(1, len(parts))):
            failed[item.key] = "Conflict"
            continue
        files[item.key] = item.sha256
    return Expected(files, failed, 1 if failed else 0)
