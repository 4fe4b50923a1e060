"""Export two small JAX ReLU CNNs with jax2onnx (opset 23): a flax.nnx one and a plain-lax one.

Run in a separate venv (``pip install jax jaxlib jax2onnx flax``)::

    /work/venv-jax/bin/python converters/jax_export.py

Writes ``jax_flax_cnn`` (nnx.Conv/BatchNorm/max_pool/avg_pool/Linear) and
``jax_lax_cnn`` (``lax.conv_general_dilated`` on NHWC/HWIO, nnx pooling,
``jnp.dot`` head) into tests/fixtures/foreign/. Both take NHWC input.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax import lax
from jax2onnx import to_onnx

from _common import parse_args, save_fixture, seed_everything


class FlaxCNN(nnx.Module):
    """Conv-BN-ReLU-MaxPool, Conv-BN-ReLU6-AvgPool, strided Conv-ReLU, Flatten, Linear head."""

    def __init__(self, rngs: nnx.Rngs) -> None:
        self.conv1 = nnx.Conv(3, 8, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.bn1 = nnx.BatchNorm(8, use_running_average=True, rngs=rngs)
        self.conv2 = nnx.Conv(8, 16, kernel_size=(3, 3), padding="SAME", rngs=rngs)
        self.bn2 = nnx.BatchNorm(16, use_running_average=True, rngs=rngs)
        self.conv3 = nnx.Conv(16, 16, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.fc1 = nnx.Linear(16 * 4 * 4, 32, rngs=rngs)
        self.fc2 = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = nnx.max_pool(nnx.relu(self.bn1(self.conv1(x))), window_shape=(2, 2), strides=(2, 2))
        x = nnx.avg_pool(jax.nn.relu6(self.bn2(self.conv2(x))), window_shape=(2, 2), strides=(2, 2))
        x = nnx.relu(self.conv3(x))
        x = x.reshape((x.shape[0], -1))
        return self.fc2(nnx.relu(self.fc1(x)))


def build_flax(seed: int, rng: np.random.Generator) -> FlaxCNN:
    """The seeded flax model with non-trivial BatchNorm statistics and affine terms."""
    model = FlaxCNN(nnx.Rngs(seed))
    for bn in (model.bn1, model.bn2):
        n = bn.num_features
        bn.mean.set_value(jnp.asarray(0.1 * rng.standard_normal(n), jnp.float32))
        bn.var.set_value(jnp.asarray(0.5 + rng.random(n), jnp.float32))
        bn.scale.set_value(jnp.asarray(1.0 + 0.2 * rng.standard_normal(n), jnp.float32))
        bn.bias.set_value(jnp.asarray(0.1 * rng.standard_normal(n), jnp.float32))
    return model


def lax_params(rng: np.random.Generator) -> dict[str, jax.Array]:
    """He-initialised weights for :func:`lax_cnn` (HWIO kernels, (in, out) dense)."""

    def he(shape: tuple[int, ...], fan_in: int) -> jax.Array:
        return jnp.asarray(rng.standard_normal(shape) * np.sqrt(2.0 / fan_in), jnp.float32)

    def small(n: int) -> jax.Array:
        return jnp.asarray(0.1 * rng.standard_normal(n), jnp.float32)

    return {
        "k1": he((3, 3, 3, 8), 27), "b1": small(8),
        "k2": he((3, 3, 8, 16), 72), "b2": small(16),
        "w1": he((16 * 8 * 8, 32), 1024), "c1": small(32),
        "w2": he((32, 10), 32), "c2": small(10),
    }


def lax_cnn(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """Two NHWC lax convolutions with ReLU, max/avg pooling, a dense head.

    Pooling uses flax's helpers: jax2onnx 0.17 lowers a raw ``lax.reduce_window``
    on NHWC to a 4-D MaxPool (and a 4-D Conv for sums) that onnxruntime refuses
    to run ("Unsupported pooling size").
    """
    dims = ("NHWC", "HWIO", "NHWC")
    x = lax.conv_general_dilated(x, params["k1"], (1, 1), "SAME", dimension_numbers=dims) + params["b1"]
    x = jnp.maximum(x, 0.0)
    x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
    x = lax.conv_general_dilated(x, params["k2"], (1, 1), "SAME", dimension_numbers=dims) + params["b2"]
    x = jnp.clip(x, 0.0, 6.0)
    x = nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    x = jnp.maximum(jnp.dot(x, params["w1"]) + params["c1"], 0.0)
    return jnp.dot(x, params["w2"]) + params["c2"]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    rng = seed_everything(args.seed)
    x = rng.standard_normal((2, 32, 32, 3)).astype(np.float32)
    spec = [("B", 32, 32, 3)]

    flax_model = build_flax(args.seed, rng)
    y = np.asarray(flax_model(jnp.asarray(x)))
    proto = to_onnx(flax_model, spec, model_name="jax_flax_cnn", opset=23,
                    input_names=["input"], output_names=["logits"])
    save_fixture("jax_flax_cnn", proto, {"input": x, "output": y}, args.out_dir)

    params = lax_params(rng)

    def fn(inp: jax.Array) -> jax.Array:
        return lax_cnn(params, inp)

    y = np.asarray(jax.jit(fn)(jnp.asarray(x)))
    proto = to_onnx(fn, spec, model_name="jax_lax_cnn", opset=23,
                    input_names=["input"], output_names=["logits"])
    save_fixture("jax_lax_cnn", proto, {"input": x, "output": y}, args.out_dir)


if __name__ == "__main__":
    main()
