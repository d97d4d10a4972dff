"""Zip archives (torch .pt files, numpy .npz stores) checked from their directory before anything is inflated.

A zip's central directory declares every member's size: a bomb is refused from those numbers, and
the CRCs torch and numpy skip are verified by streaming each member through a bounded reader.
"""
from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The archive is corrupt or declares more than the caller allows; the message is one clause."""


def check_zip(source: str | Path | bytes | BinaryIO, max_total: int, max_ratio: float = 8.0,
              max_members: int = 10_000, verify_crc: bool = True) -> int:
    """Refuse a zip whose declared sizes exceed ``max_total`` bytes in all or ``max_ratio`` × its own
    size (plus 1 MB), or whose members fail their CRC; returns the declared uncompressed total.

    Reading stops at each member's declared size, so a member that lies about its size fails its CRC
    (or ends early) instead of inflating without bound.
    """
    fh: BinaryIO
    if isinstance(source, (bytes, bytearray, memoryview)):
        fh, own_size = io.BytesIO(bytes(source)), len(source)
    elif isinstance(source, (str, Path)):
        fh, own_size = open(source, "rb"), Path(source).stat().st_size
    else:
        fh = source
        own_size = fh.seek(0, io.SEEK_END)
        fh.seek(0)
    try:
        try:
            archive = zipfile.ZipFile(fh)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ArchiveError(f"it is not a readable zip archive ({exc})") from None
        with archive:
            infos = archive.infolist()
            if len(infos) > max_members:
                raise ArchiveError(f"it holds {len(infos)} archive members; the limit is {max_members}")
            total = sum(info.file_size for info in infos)
            limit = min(max_total, int(max_ratio * own_size) + CHUNK)
            if total > limit:
                raise ArchiveError(f"it declares {total / 2**20:.0f} MB of contents in {own_size / 2**20:.1f} MB "
                                   f"(a zip bomb?); the limit is {limit / 2**20:.0f} MB")
            if verify_crc:
                for info in infos:
                    _verify_member(archive, info)
            return total
    finally:
        if isinstance(source, (str, Path)):
            fh.close()


def _verify_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    crc, seen = 0, 0
    try:
        with archive.open(info) as member:  # ZipExtFile reads at most info.file_size bytes
            while chunk := member.read(CHUNK):
                seen += len(chunk)
                crc = zlib.crc32(chunk, crc)
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise ArchiveError(f"its member {info.filename[:80]!r} fails its checksum (the file is damaged)") from None
        raise ArchiveError(f"its member {info.filename[:80]!r} is corrupt ({exc})") from None
    except (OSError, ValueError, EOFError, NotImplementedError, zlib.error,
            RuntimeError) as exc:  # RuntimeError: an encrypted member
        raise ArchiveError(f"its member {info.filename[:80]!r} is corrupt ({exc})") from None
    if seen != info.file_size or (crc & 0xFFFFFFFF) != info.CRC:
        raise ArchiveError(f"its member {info.filename[:80]!r} fails its checksum (the file is damaged)")
