""".npy files of a snapshot: fixed-size headers, checked reads, CRC32 of file contents.

Everything read here comes from a file a user may hand us, so every size is compared
with what the manifest and the buffer expect *before* any allocation or copy.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

_CRC_CHUNK = 1 << 24
_MAGIC = b"\x93NUMPY\x02\x00"  # .npy format 2.0: 4-byte header length
_ALIGN = 64


def as_bytes(a: np.ndarray) -> np.ndarray:
    """Flat uint8 view of a C-contiguous array (any dtype, any shape, empty included)."""
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def crc32(a: np.ndarray) -> int:
    mv, crc = as_bytes(a), 0
    for i in range(0, len(mv), _CRC_CHUNK):
        crc = zlib.crc32(mv[i : i + _CRC_CHUNK], crc)
    return crc


def crc32_file(fd: int, offset: int) -> int:
    """CRC32 of a file's bytes from ``offset`` to the end (read back in chunks)."""
    crc, buf = 0, bytearray(_CRC_CHUNK)
    view = memoryview(buf)
    while True:
        n = os.preadv(fd, [view], offset)
        if n == 0:
            return crc
        crc = zlib.crc32(view[:n], crc)
        offset += n


def _header_text(dtype: np.dtype, shape: tuple) -> str:
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    return "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(shape))


def header_size(fields_shapes: list[tuple]) -> int:
    """Header bytes that fit any row count (up to 2**63) for every (dtype, row_shape)."""
    longest = max(len(_header_text(d, (10**19,) + tuple(s))) for d, s in fields_shapes)
    total = len(_MAGIC) + 4 + longest + 1
    return -(-total // _ALIGN) * _ALIGN


def header_bytes(dtype: np.dtype, shape: tuple, size: int) -> bytes:
    """A .npy 2.0 header of exactly ``size`` bytes (space padded, newline ended)."""
    text = _header_text(dtype, shape)
    pad = size - len(_MAGIC) - 4 - len(text) - 1
    if pad < 0:
        raise ValueError(f"header of {shape} does not fit {size} bytes")
    body = (text + " " * pad + "\n").encode("latin1")
    return _MAGIC + struct.pack("<I", len(body)) + body


def write_npy(path: Path, a: np.ndarray) -> dict:
    """Write a small array as .npy, fsynced; its manifest entry (shape, dtype, crc32)."""
    raw = as_bytes(a)
    with open(path, "xb") as fh:
        fh.write(header_bytes(a.dtype, a.shape, header_size([(a.dtype, a.shape[1:])])))
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    return {"shape": list(a.shape), "dtype": a.dtype.str, "crc32": zlib.crc32(raw)}


def read_npy_into(
    path: Path, meta: dict, shape: tuple, dtype: np.dtype, out: np.ndarray | None, verify: bool
) -> np.ndarray:
    """Read ``path`` as an array of exactly ``shape``/``dtype`` (what the buffer expects;
    the manifest entry must say the same) into ``out[:shape[0]]`` or a new array."""
    dtype = np.dtype(dtype)
    if (
        not isinstance(meta, dict)
        or not isinstance(meta.get("shape"), list)
        or not isinstance(meta.get("dtype"), str)
        or not isinstance(meta.get("crc32"), int)
    ):
        raise ValueError(f"manifest entry of {path.name} is malformed: {meta!r}")
    if tuple(meta["shape"]) != tuple(shape) or meta["dtype"] != dtype.str:
        raise ValueError(
            f"manifest entry of {path.name} says {meta['shape']} {meta['dtype']}, "
            f"the buffer expects {list(shape)} {dtype.str}"
        )
    if not path.is_file():
        raise ValueError(f"snapshot file {path} is missing")
    with open(path, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(
                version
            )
            if read is None:
                raise ValueError(f"unsupported .npy version {version}")
            hshape, fortran, hdtype = read(fh)
        except Exception as e:  # noqa: BLE001 - any parse failure is corruption
            raise ValueError(f"snapshot file {path} has a corrupt .npy header: {e}") from None
        if tuple(hshape) != tuple(shape) or np.dtype(hdtype) != dtype or fortran:
            raise ValueError(
                f"snapshot file {path}: header {hshape} {hdtype} does not match the manifest {list(shape)} {dtype.str}"
            )
        nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize  # exact, no overflow
        size = os.fstat(fh.fileno()).st_size
        if size != fh.tell() + nbytes:
            raise ValueError(
                f"snapshot file {path} is truncated or padded: {size} bytes, expected {fh.tell() + nbytes}"
            )
        dst = np.empty(shape, dtype) if out is None else out[: shape[0]]
        if dst.shape != tuple(shape):
            raise ValueError(f"snapshot file {path}: {shape[0]} rows do not fit the buffer")
        if nbytes and fh.readinto(as_bytes(dst)) != nbytes:
            raise ValueError(f"snapshot file {path}: short read")
    if verify and crc32(dst) != meta["crc32"]:
        raise ValueError(f"snapshot file {path}: checksum mismatch (corrupt data)")
    return dst
