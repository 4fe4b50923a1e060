"""The Keras CNN shared by the Keras recipes (backend-agnostic Keras 3 code)."""

from __future__ import annotations

import keras
import numpy as np


def build(rng: np.random.Generator) -> keras.Model:
    """Conv-BN-ReLU-MaxPool, Conv-BN-ReLU6-AvgPool, strided Conv-ReLU, Flatten, Dense head.

    Biases and BatchNorm statistics are drawn from ``rng`` (Keras initialises
    biases to zero, and tf2onnx drops zero biases).
    """
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3), name="input"),
            layers.Conv2D(8, 3, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 3, padding="same"),
            layers.BatchNormalization(),
            layers.ReLU(max_value=6.0),
            layers.AveragePooling2D(2),
            layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )
    for layer in model.layers:
        if isinstance(layer, (layers.Conv2D, layers.Dense)):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, (0.1 * rng.standard_normal(bias.shape)).astype(np.float32)])
        elif isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            n = gamma.shape[0]
            layer.set_weights(
                [
                    (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32),
                    (0.1 * rng.standard_normal(n)).astype(np.float32),
                    (0.1 * rng.standard_normal(n)).astype(np.float32),
                    (0.5 + rng.random(n)).astype(np.float32),
                ]
            )
    return model
