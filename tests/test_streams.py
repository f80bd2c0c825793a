"""fit / evaluate / predict on a PyDataset, a generator or a re-iterable
data loader, as Keras 3 takes them: the same numbers as the arrays the
batches come from, Keras's epoch semantics (running out of data, shared
generator iterators) and its errors."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import fastdense as fd
from fastdense import callbacks, layers, optimizers
from fastdense.utils import PyDataset


def _data(n=100, seed=0):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 5)).astype(np.float32)
    y = np.argmax(x[:, :3], 1)
    return x, y, r.uniform(0.5, 2.0, n).astype(np.float32)


class Batches(PyDataset):
    def __init__(self, x, y=None, sw=None, batch_size=20, **kw):
        super().__init__(**kw)
        self.x, self.y, self.sw, self.bs = x, y, sw, batch_size
        self.epochs_ended = 0

    def __len__(self):
        return math.ceil(len(self.x) / self.bs)

    def __getitem__(self, i):
        s = slice(i * self.bs, (i + 1) * self.bs)
        if self.y is None:
            return self.x[s]
        return (self.x[s], self.y[s]) if self.sw is None else (self.x[s], self.y[s], self.sw[s])

    def on_epoch_end(self):
        self.epochs_ended += 1


class Loader:
    """A re-iterable of batches with a length, as a torch DataLoader."""

    def __init__(self, x, y, bs):
        self.x, self.y, self.bs = x, y, bs

    def __len__(self):
        return math.ceil(len(self.x) / self.bs)

    def __iter__(self):
        for i in range(0, len(self.x), self.bs):
            yield [self.x[i:i + self.bs], self.y[i:i + self.bs]]


def _model(metrics=("accuracy",), loss="sparse_categorical_crossentropy"):
    fd.utils.set_random_seed(1)
    m = fd.Sequential([fd.Input((5,)), layers.Dense(8, activation="relu"),
                       layers.Dense(3, activation="softmax")])
    m.compile(optimizer=optimizers.Adam(0.01), loss=loss, metrics=list(metrics))
    return m


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy",
                                  fd.losses.CategoricalFocalCrossentropy()])
def test_pydataset_trains_as_its_arrays(loss):
    x, y, sw = _data()
    yy = y if isinstance(loss, str) else np.eye(3, dtype=np.float32)[y]
    a, b = _model(loss=loss), _model(loss=loss)
    ds = Batches(x, yy, sw)
    ha = a.fit(x, yy, sample_weight=sw, batch_size=20, epochs=3, shuffle=False, verbose=0,
               validation_data=(x[:40], yy[:40])).history
    hb = b.fit(ds, epochs=3, shuffle=False, verbose=0,
               validation_data=Batches(x[:40], yy[:40], batch_size=32)).history
    assert ha.keys() == hb.keys()
    for key in ha:
        np.testing.assert_allclose(hb[key], ha[key], rtol=1e-6, err_msg=key)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-6, atol=1e-7)
    assert ds.epochs_ended == 3
    np.testing.assert_allclose(b.evaluate(Batches(x, yy, batch_size=25), verbose=0),
                               a.evaluate(x, yy, verbose=0), rtol=1e-6)
    np.testing.assert_array_equal(b.predict(Batches(x, batch_size=30), verbose=0),
                                  a.predict(x, verbose=0))
    np.testing.assert_array_equal(b.predict(Batches(x, yy, batch_size=30), verbose=0, steps=2),
                                  a.predict(x[:60], verbose=0))


def test_generators_share_one_iterator_and_run_out_as_keras():
    x, y, _ = _data()

    def gen(passes):
        for _ in range(passes):
            for i in range(0, 100, 32):
                yield x[i:i + 32], y[i:i + 32]
    a, b = _model(), _model()
    ha = a.fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0).history
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hb = b.fit(gen(5), epochs=2, steps_per_epoch=4, verbose=0).history
    assert any("`shuffle=True` was passed, but will be ignored" in str(w.message)
               for w in caught)
    np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=1e-6)
    # one pass for three epochs: the first trains, then the input runs out
    c = _model()
    with pytest.warns(UserWarning, match="Your input ran out of data"):
        h = c.fit(gen(1), epochs=3, shuffle=False, verbose=0).history
    assert len(h["loss"]) == 1
    # steps_per_epoch beyond what is left: that epoch ends early and training stops
    d = _model()
    with pytest.warns(UserWarning, match="ran out of data"):
        h = d.fit(gen(1), epochs=3, steps_per_epoch=3, shuffle=False, verbose=0).history
    assert len(h["loss"]) == 2


def test_data_loaders_are_iterated_afresh_each_epoch():
    x, y, _ = _data()
    a, b = _model(), _model()
    ha = a.fit(x, y, batch_size=25, epochs=3, shuffle=False, verbose=0).history
    hb = b.fit(Loader(x, y, 25), epochs=3, verbose=0).history
    np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=1e-6)
    np.testing.assert_allclose(b.evaluate(Loader(x, y, 50), verbose=0),
                               a.evaluate(x, y, verbose=0), rtol=1e-6)


def test_batch_callbacks_and_shuffled_batch_order():
    x, y, _ = _data()
    seen = []
    cb = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append((b, logs)))
    ds = Batches(x, y)
    _model().fit(ds, epochs=2, verbose=0, callbacks=[cb])
    assert [b for b, _ in seen] == [0, 1, 2, 3, 4] * 2
    assert all(set(logs) == {"loss", "accuracy"} for _, logs in seen)
    # shuffle=True (the default) permutes the batches of a PyDataset each epoch
    order = []

    class Spy(Batches):
        def __getitem__(self, i):
            order.append(i)
            return super().__getitem__(i)
    fd.utils.set_random_seed(3)
    _model().fit(Spy(x, y), epochs=4, verbose=0)
    epochs = [order[k:k + 5] for k in range(0, 20, 5)]
    assert all(sorted(e) == [0, 1, 2, 3, 4] for e in epochs)
    assert any(e != [0, 1, 2, 3, 4] for e in epochs)


def test_stream_errors_as_keras():
    x, y, sw = _data()
    m = _model()
    with pytest.raises(ValueError, match="When providing `x` as a PyDataset, `y` should not "
                                         "be passed"):
        m.fit(Batches(x, y), y)
    with pytest.raises(ValueError, match="`sample_weights` should not be passed"):
        m.fit(Batches(x, y), sample_weight=sw)
    with pytest.raises(ValueError, match="`class_weight` is not supported for Python "
                                         "generator"):
        m.fit((b for b in [(x, y)]), class_weight={0: 1.0, 1: 1.0, 2: 1.0})
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(Batches(x, y), validation_split=0.2)
    with pytest.raises(ValueError, match="must hold targets"):
        m.fit(Batches(x))

    class Endless(PyDataset):
        num_batches = None

        def __getitem__(self, i):
            return x[:10], y[:10]
    with pytest.raises(ValueError, match="steps_per_epoch"):
        m.fit(Endless(), epochs=1, verbose=0)
    h = m.fit(Endless(), epochs=2, steps_per_epoch=3, verbose=0)
    assert len(h.history["loss"]) == 2
    assert m.evaluate(Endless(), steps=2, verbose=0)[0] > 0
    with pytest.raises(ValueError, match="yielded no batches"):
        m.evaluate(iter([]), verbose=0)
    # class weights apply to a PyDataset's batches as to arrays
    cw = {0: 1.0, 1: 3.0, 2: 0.5}
    a, b = _model(), _model()
    ha = a.fit(x, y, batch_size=20, class_weight=cw, shuffle=False, verbose=0).history
    hb = b.fit(Batches(x, y), class_weight=cw, shuffle=False, verbose=0).history
    np.testing.assert_allclose(hb["loss"], ha["loss"], rtol=1e-6)


def test_pydataset_side_by_side_with_keras():
    import os
    os.environ.setdefault("KERAS_BACKEND", "jax")
    keras = pytest.importorskip("keras")
    x, y, _ = _data()
    yr = (x[:, :3] @ np.array([[1.0, -2.0], [0.5, 0.3], [-1.0, 1.0]], np.float32))
    out = {}
    w0 = None
    for lib in (keras, fd):
        class DS(lib.utils.PyDataset):
            def __init__(self, bs, **kw):
                super().__init__(**kw)
                self.bs = bs

            def __len__(self):
                return math.ceil(len(x) / self.bs)

            def __getitem__(self, i):
                return x[i * self.bs:(i + 1) * self.bs], yr[i * self.bs:(i + 1) * self.bs]
        m = lib.Sequential([lib.Input((5,)), lib.layers.Dense(8, activation="relu"),
                            lib.layers.Dense(2)])
        if w0 is None:
            w0 = [np.asarray(a) for a in m.get_weights()]
        else:
            m.set_weights(w0)
        m.compile(optimizer=lib.optimizers.SGD(0.05), loss="mse", metrics=["mae"])
        h = m.fit(DS(20), epochs=3, shuffle=False, verbose=0, validation_data=DS(16)).history
        out[lib.__name__] = (h, m.evaluate(DS(25), verbose=0),
                             np.asarray(m.predict(DS(30), verbose=0)))
    (hk, ek, pk), (hf, ef, pf) = out["keras"], out["fastdense"]
    for key in hk:
        np.testing.assert_allclose(hf[key], hk[key], rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(ef, ek, rtol=1e-5)
    np.testing.assert_allclose(pf, pk, rtol=1e-5, atol=1e-6)
