"""TensorBoard event files without TensorFlow: TFRecord framing (masked
CRC32-C) around hand-encoded ``Event`` protocol buffers holding TF2-style
summaries, as ``tf.summary.scalar`` and ``tf.summary.histogram`` write them
(a float scalar tensor with the ``scalars`` plugin's metadata; a float64
[30, 3] tensor of bucket edges and counts with the ``histograms`` plugin's)."""
from __future__ import annotations

import os
import socket
import struct
import time
from typing import BinaryIO, List, Optional

import numpy as np

_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _crc_table() -> List[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# -- protocol buffer encoding (the few wire types an Event needs) -------------
def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # (negative int64 as two's complement, as protobuf does)
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _bytes_field(field: int, data: bytes) -> bytes:
    return _key(field, 2) + _varint(len(data)) + data


def _summary(tag: str, plugin: bytes, tensor: bytes) -> bytes:
    """A ``Summary`` with one value: ``Value{tag (1), tensor (8), metadata (9):
    plugin_data.plugin_name}``."""
    metadata = _bytes_field(1, _bytes_field(1, plugin))
    value_msg = (_bytes_field(1, tag.encode("utf-8")) + _bytes_field(9, metadata)
                 + _bytes_field(8, tensor))
    return _bytes_field(1, value_msg)


def scalar_summary(tag: str, value: float) -> bytes:
    """A TF2 scalar: a float32 [] tensor for the ``scalars`` plugin."""
    tensor = (_key(1, 0) + _varint(1)                      # dtype: DT_FLOAT
              + _bytes_field(2, b"")                        # tensor_shape: scalar
              + _bytes_field(5, struct.pack("<f", value)))  # float_val (packed)
    return _summary(tag, b"scalars", tensor)


def histogram_buckets(data: np.ndarray, bucket_count: int = 30) -> np.ndarray:
    """TensorBoard's buckets of ``data``: rows (left edge, right edge, count),
    ``bucket_count`` equal-width buckets from its min to its max (the last
    one closed); one value only: every edge at it, all in the last bucket."""
    data = np.asarray(data, dtype=np.float64).ravel()
    if data.size == 0:
        return np.zeros((bucket_count, 3))
    lo, hi = float(np.min(data)), float(np.max(data))
    if hi == lo:
        counts = np.zeros(bucket_count)
        counts[-1] = data.size
        return np.stack([np.full(bucket_count, lo), np.full(bucket_count, lo), counts], 1)
    index = np.minimum(np.floor((data - lo) / ((hi - lo) / bucket_count)).astype(np.int64),
                       bucket_count - 1)
    counts = np.bincount(index, minlength=bucket_count).astype(np.float64)
    edges = np.linspace(lo, hi, bucket_count + 1)
    return np.stack([edges[:-1], edges[1:], counts], 1)


def histogram_summary(tag: str, data: np.ndarray) -> bytes:
    """A TF2 histogram: a float64 [30, 3] tensor of buckets for the
    ``histograms`` plugin."""
    buckets = histogram_buckets(data)
    shape = b"".join(_bytes_field(2, _key(1, 0) + _varint(d)) for d in buckets.shape)
    tensor = (_key(1, 0) + _varint(2)                       # dtype: DT_DOUBLE
              + _bytes_field(2, shape)                       # tensor_shape: [30, 3]
              + _bytes_field(4, buckets.astype("<f8").tobytes()))  # tensor_content
    return _summary(tag, b"histograms", tensor)


def event(step: int, wall_time: Optional[float] = None, summary: Optional[bytes] = None,
          file_version: Optional[str] = None) -> bytes:
    """An ``Event``: wall_time (1), step (2), file_version (3) or summary (5)."""
    out = _key(1, 1) + struct.pack("<d", time.time() if wall_time is None else wall_time)
    out += _key(2, 0) + _varint(int(step))
    if file_version is not None:
        out += _bytes_field(3, file_version.encode("utf-8"))
    if summary is not None:
        out += _bytes_field(5, summary)
    return out


def record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, the data's masked CRC."""
    length = struct.pack("<Q", len(data))
    return (length + struct.pack("<I", masked_crc32c(length)) + data
            + struct.pack("<I", masked_crc32c(data)))


class EventFileWriter:
    """Appends events to ``logdir/events.out.tfevents.<time>.<host>.<pid>.<n>.v2``
    (created with the directory on the first write)."""

    _count = 0

    def __init__(self, logdir: str) -> None:
        self.logdir = logdir
        self.path: Optional[str] = None
        self._file: Optional[BinaryIO] = None

    def _open(self) -> None:
        os.makedirs(self.logdir, exist_ok=True)
        EventFileWriter._count += 1
        name = (f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                f"{os.getpid()}.{EventFileWriter._count}.v2")
        self.path = os.path.join(self.logdir, name)
        self._file = open(self.path, "wb")
        self._file.write(record(event(0, file_version="brain.Event:2")))

    def _write(self, summary: bytes, step: int) -> None:
        if self._file is None:
            self._open()
        assert self._file is not None
        self._file.write(record(event(step, summary=summary)))

    def scalar(self, tag: str, value: float, step: int) -> None:
        self._write(scalar_summary(tag, float(value)), step)

    def histogram(self, tag: str, data: np.ndarray, step: int) -> None:
        self._write(histogram_summary(tag, data), step)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
