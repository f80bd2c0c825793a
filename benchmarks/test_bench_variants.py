"""Common Keras variants of the MNIST model (784-512-10, RMSprop, batch 128), one
epoch of 30000 rows each, in one group against the plain model: a layer,
activation, regularizer, constraint or optimizer that falls off the fast path
shows as a large ratio. (benchmarks/README.md lists what each cost and what
still does.)"""
import pytest

import fastdense
from fastdense import constraints, layers, models, optimizers, regularizers

N = 30000


def _dense(**kw):
    return [layers.Input((784,)), layers.Dense(512, **{"activation": "relu", **kw}),
            layers.Dense(10, activation="softmax")]


VARIANTS = {
    "base": (_dense, "rmsprop"),
    "dropout 0.2": (lambda: [layers.Input((784,)), layers.Dense(512, activation="relu"),
                             layers.Dropout(0.2), layers.Dense(10, activation="softmax")],
                    "rmsprop"),
    "batchnorm": (lambda: [layers.Input((784,)), layers.Dense(512, activation="relu"),
                           layers.BatchNormalization(), layers.Dense(10, activation="softmax")],
                  "rmsprop"),
    "tanh": (lambda: _dense(activation="tanh"), "rmsprop"),
    "sigmoid": (lambda: _dense(activation="sigmoid"), "rmsprop"),
    "elu": (lambda: _dense(activation="elu"), "rmsprop"),
    "gelu": (lambda: _dense(activation="gelu"), "rmsprop"),
    "l2 kernel_regularizer": (lambda: _dense(kernel_regularizer=regularizers.l2(1e-4)),
                              "rmsprop"),
    "max_norm": (lambda: _dense(kernel_constraint=constraints.MaxNorm(2.0)), "rmsprop"),
    "adam": (_dense, "adam"),
    "adamw": (_dense, "adamw"),
    "sgd": (_dense, "sgd"),
    "sgd momentum": (_dense, lambda: optimizers.SGD(momentum=0.9)),
    "nadam": (_dense, "nadam"),
    "adam clipnorm": (_dense, lambda: optimizers.Adam(clipnorm=1.0)),
}


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.benchmark(group="MNIST variants, 784-512-10, 30000 rows, batch 128")
def test_variant_epoch(benchmark, mnist_xy, threads, name):
    x, y, _, _ = mnist_xy
    x, y = x[:N], y[:N]
    fastdense.set_num_threads(threads)
    build, opt = VARIANTS[name]
    fastdense.utils.set_random_seed(0)
    m = models.Sequential(build())
    m.compile(optimizer=opt() if callable(opt) else opt,
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    benchmark.pedantic(lambda: m.fit(x, y, epochs=1, batch_size=128, verbose=0), rounds=2,
                       warmup_rounds=1)
