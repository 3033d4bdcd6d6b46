import struct

import numpy as np
import pytest

from mgcma.encoders.ct2 import CT2FormatError, dequantize, read_model_bin


def write_model_bin(path, variables, aliases=(), spec="WhisperSpec"):
    """A CTranslate2 model.bin (version 6) written from the format's description."""
    def string(s):
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"
    ids = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}
    out = struct.pack("<I", 6) + string(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, a in variables.items():
        out += string(name) + struct.pack("<B", a.ndim) + b"".join(struct.pack("<I", d) for d in a.shape)
        out += struct.pack("<B", ids[a.dtype.name]) + struct.pack("<I", a.nbytes) + a.tobytes()
    out += struct.pack("<I", len(aliases)) + b"".join(string(a) + string(t) for a, t in aliases)
    path.write_bytes(out)
    return out


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return {"encoder/conv1/weight": rng.standard_normal((4, 3, 3)).astype(np.float16),
            "encoder/num_heads": np.array(2, dtype=np.int16),
            "encoder/layer_0/ffn/linear_0/weight": rng.integers(-127, 127, (6, 4)).astype(np.int8),
            "encoder/layer_0/ffn/linear_0/weight_scale": np.array([2.0, 4, 8, 16, 32, 64], dtype=np.float32),
            "decoder/embeddings/weight": rng.standard_normal((50, 4)).astype(np.float32)}


def test_reads_every_array_with_its_shape_and_dtype(tmp_path, arrays):
    write_model_bin(tmp_path / "model.bin", arrays, aliases=[("decoder/projection/weight", "decoder/embeddings/weight")])
    spec, got = read_model_bin(tmp_path / "model.bin")
    assert spec == "WhisperSpec"
    for name, a in arrays.items():
        assert got[name].dtype == a.dtype and np.array_equal(got[name], a)
    assert np.array_equal(got["decoder/projection/weight"], arrays["decoder/embeddings/weight"])


def test_keep_skips_the_rest_and_int8_is_dequantised_per_row(tmp_path, arrays):
    write_model_bin(tmp_path / "model.bin", arrays)
    _, got = read_model_bin(tmp_path / "model.bin", keep=lambda n: n.startswith("encoder/"))
    assert not any(n.startswith("decoder/") for n in got)
    w = dequantize(got, "encoder/layer_0/ffn/linear_0/weight")
    expected = arrays["encoder/layer_0/ffn/linear_0/weight"].astype(np.float32) / arrays[
        "encoder/layer_0/ffn/linear_0/weight_scale"][:, None]
    assert w.dtype == np.float32 and np.allclose(w, expected)


def test_a_model_split_in_parts_reads_as_one(tmp_path, arrays):
    data = write_model_bin(tmp_path / "whole.bin", arrays)
    cut = len(data) // 3   # inside an array
    (tmp_path / "a").write_bytes(data[:cut])
    (tmp_path / "b").write_bytes(data[cut:])
    _, got = read_model_bin([tmp_path / "a", tmp_path / "b"])
    assert all(np.array_equal(got[n], a) for n, a in arrays.items())


def test_truncated_and_foreign_files_are_named(tmp_path, arrays):
    data = write_model_bin(tmp_path / "model.bin", arrays)
    (tmp_path / "cut.bin").write_bytes(data[:len(data) // 2])
    with pytest.raises(CT2FormatError, match="ends inside"):
        read_model_bin(tmp_path / "cut.bin")
    (tmp_path / "other.bin").write_bytes(b"PK\x03\x04" + bytes(64))
    with pytest.raises(CT2FormatError, match="binary version"):
        read_model_bin(tmp_path / "other.bin")
