"""Verified safetensors loads as numpy, torch and jax arrays, by their common names too."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import omsign
from helpers.fixtures import KeyPair, need_module
from omsign.errors import BackendUnavailableError, UsageError
from omsign.integrations.safetensors import load, load_sharded

TENSORS = {
    "w": np.arange(12, dtype=np.float32).reshape(3, 4),
    "i": np.array([-3, 0, 7], dtype=np.int64),
}
BF16 = [1.5, -2.0, 0.25]  # exact in bfloat16


@pytest.fixture
def verified(tmp_path: Path, p256: KeyPair) -> omsign.VerifiedModel:
    torch = need_module("torch")
    from safetensors.torch import save_file

    model = tmp_path / "model"
    model.mkdir()
    tensors = {k: torch.from_numpy(v) for k, v in TENSORS.items()}
    tensors["h"] = torch.tensor(BF16, dtype=torch.bfloat16)
    save_file(tensors, str(model / "model.safetensors"))
    save_file({"x": torch.from_numpy(TENSORS["w"])}, str(model / "only-numpy.safetensors"))
    omsign.sign(model, key=p256.private)
    return omsign.open_verified(model, key=p256.public, verify_content=False)


@pytest.mark.parametrize("framework", ["numpy", "np"])
def test_numpy_by_either_name(verified: omsign.VerifiedModel, framework: str) -> None:
    got = load(verified, "model.safetensors", framework=framework)
    for name, value in TENSORS.items():
        assert isinstance(got[name], np.ndarray)
        np.testing.assert_array_equal(got[name], value)
        assert got[name].dtype == value.dtype


@pytest.mark.parametrize("framework", ["torch", "pt"])
def test_torch_by_either_name(verified: omsign.VerifiedModel, framework: str) -> None:
    torch = need_module("torch")
    got = load(verified, "model.safetensors", framework=framework)
    assert all(isinstance(t, torch.Tensor) for t in got.values())
    assert got["w"].tolist() == TENSORS["w"].tolist()
    assert got["h"].dtype == torch.bfloat16
    assert got["h"].tolist() == BF16


@pytest.mark.parametrize("framework", ["jax", "flax"])
def test_jax_arrays_including_bfloat16(verified: omsign.VerifiedModel, framework: str) -> None:
    jnp = need_module("jax.numpy")
    got = load(verified, "model.safetensors", framework=framework)
    assert all(isinstance(a, need_module("jax").Array) for a in got.values())
    assert got["w"].tolist() == TENSORS["w"].tolist()
    assert got["h"].dtype == jnp.bfloat16
    assert got["h"].astype(jnp.float32).tolist() == BF16


def test_numpy_bfloat16_through_ml_dtypes(verified: omsign.VerifiedModel) -> None:
    ml_dtypes = need_module("ml_dtypes")
    got = load(verified, "model.safetensors", tensors=["h"])
    assert got["h"].dtype == ml_dtypes.bfloat16
    assert got["h"].astype(np.float32).tolist() == BF16


def test_numpy_bfloat16_without_ml_dtypes_is_refused_before_reading(
    verified: omsign.VerifiedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ml_dtypes", None)  # as if not installed
    with pytest.raises(UsageError, match=r"'h' is BF16.*ml_dtypes.*torch"):
        load(verified, "model.safetensors")
    # Tensors numpy holds natively still load.
    np.testing.assert_array_equal(load(verified, "only-numpy.safetensors")["x"], TENSORS["w"])


@pytest.mark.parametrize(
    ("framework", "module", "extra"),
    [("jax", "jax.numpy", "jax"), ("pt", "torch", "torch"), ("np", "numpy", "safetensors")],
)
def test_a_missing_framework_names_the_extra(
    verified: omsign.VerifiedModel,
    monkeypatch: pytest.MonkeyPatch,
    framework: str,
    module: str,
    extra: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(BackendUnavailableError, match=rf"pip install 'omsign\[{extra}\]'"):
        load(verified, "model.safetensors", framework=framework)


@pytest.mark.parametrize(("framework", "convert"), [("tf", "tf.convert_to_tensor"),
                                                    ("paddle", "paddle.to_tensor"),
                                                    ("mlx", "mlx.core.array")])  # fmt: skip
def test_other_frameworks_say_how_to_convert(
    verified: omsign.VerifiedModel, framework: str, convert: str
) -> None:
    with pytest.raises(UsageError, match=rf"{framework}.*not supported.*{convert}"):
        load(verified, "model.safetensors", framework=framework)


def test_sharded_checks_the_framework_before_reading_the_index(
    verified: omsign.VerifiedModel,
) -> None:
    # The model has no index: an unknown framework is reported first.
    with pytest.raises(UsageError, match="unknown framework 'caffe'"):
        load_sharded(verified, framework="caffe")
