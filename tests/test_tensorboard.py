"""The TensorBoard callback: Keras's scalar names and steps, written as
TensorBoard event files without TensorFlow. The files are read back here by
a small independent decoder (TFRecord framing, CRC-32C, the Event and
Summary fields) and, where the tensorboard package is installed, by
TensorBoard's own reader."""
import glob
import os
import struct

import numpy as np
import pytest

import fastdense as fd
from fastdense import _tfevents, callbacks, layers


def _crc32c_bitwise(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def _masked(data):
    crc = _crc32c_bitwise(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _fields(buf):
    """(field number, wire type, value) of a protobuf message's fields."""
    i, out = 0, []
    while i < len(buf):
        key, i = _uvarint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _uvarint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _uvarint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise AssertionError(f"wire type {wire}")
        out.append((field, wire, value))
    return out


def _uvarint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _read_scalars(logdir):
    """{tag: [(step, value)]} from the one event file in ``logdir``, checking
    every record's CRCs and the file-version event first."""
    (path,) = glob.glob(os.path.join(logdir, "events.out.tfevents.*.v2"))
    data = open(path, "rb").read()
    i, events = 0, []
    while i < len(data):
        length_bytes = data[i:i + 8]
        (n,) = struct.unpack("<Q", length_bytes)
        assert struct.unpack("<I", data[i + 8:i + 12])[0] == _masked(length_bytes)
        payload = data[i + 12:i + 12 + n]
        assert struct.unpack("<I", data[i + 12 + n:i + 16 + n])[0] == _masked(payload)
        events.append(payload)
        i += 16 + n
    first = dict((f, v) for f, _, v in _fields(events[0]))
    assert first[3] == b"brain.Event:2"
    out = {}
    for ev in events[1:]:
        fields = {f: v for f, _, v in _fields(ev)}
        step = fields.get(2, 0)
        (value_field,) = [v for f, _, v in _fields(fields[5]) if f == 1]
        value = dict((f, v) for f, _, v in _fields(value_field))
        meta = dict((f, v) for f, _, v in _fields(value[9]))
        plugin = dict((f, v) for f, _, v in _fields(meta[1]))
        tensor = dict((f, v) for f, _, v in _fields(value[8]))
        if plugin[1] == b"histograms":
            assert tensor[1] == 2  # DT_DOUBLE
            dims = [dict((f, v) for f, _, v in _fields(d))[1]
                    for f, _, d in _fields(tensor[2]) if f == 2]
            val = np.frombuffer(tensor[4], "<f8").reshape(dims)
        else:
            assert plugin[1] == b"scalars" and tensor[1] == 1  # DT_FLOAT
            (val,) = struct.unpack("<f", tensor[5])
        out.setdefault(value[1].decode(), []).append((step, val))
    return out


def test_crc32c_and_framing():
    assert _tfevents.crc32c(b"123456789") == 0xE3069283  # (the CRC-32C check value)
    for data in (b"", b"a", bytes(range(256)) * 3):
        assert _tfevents.crc32c(data) == _crc32c_bitwise(data)
        assert _tfevents.masked_crc32c(data) == _masked(data)
    rec = _tfevents.record(b"xyz")
    assert len(rec) == 8 + 4 + 3 + 4 and rec[12:15] == b"xyz"


def _fit(tmp_path, rng, **tb):
    x = rng.normal(size=(200, 6)).astype(np.float32)
    y = rng.integers(0, 3, 200)
    m = fd.Sequential([fd.Input(shape=(6,)), layers.Dense(8, activation="relu"),
                       layers.Dense(3, activation="softmax")])
    m.compile(fd.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
              metrics=["accuracy"])
    cb = callbacks.TensorBoard(str(tmp_path / "logs"), **tb)
    history = m.fit(x, y, epochs=3, batch_size=32, validation_split=0.2, verbose=0,
                    callbacks=[cb])
    return history.history, str(tmp_path / "logs")


def test_epoch_scalars_as_keras_names_them(tmp_path, rng):
    history, logdir = _fit(tmp_path, rng)
    train, val = _read_scalars(f"{logdir}/train"), _read_scalars(f"{logdir}/validation")
    assert sorted(train) == ["epoch_accuracy", "epoch_learning_rate", "epoch_loss"]
    for key in ("loss", "accuracy"):
        assert [s for s, _ in train[f"epoch_{key}"]] == [0, 1, 2]
        np.testing.assert_allclose([v for _, v in train[f"epoch_{key}"]], history[key])
        np.testing.assert_allclose([v for _, v in val[f"epoch_{key}"]], history[f"val_{key}"])
    assert [v for _, v in train["epoch_learning_rate"]] == [np.float32(0.01)] * 3
    # each validation's results, at the optimizer's step count (5 batches an epoch)
    assert [s for s, _ in val["evaluation_loss_vs_iterations"]] == [5, 10, 15]
    np.testing.assert_allclose([v for _, v in val["evaluation_loss_vs_iterations"]],
                               history["val_loss"])


def test_batch_scalars_every_n_batches(tmp_path, rng):
    history, logdir = _fit(tmp_path, rng, update_freq=2, write_steps_per_second=True)
    train = _read_scalars(f"{logdir}/train")
    assert [s for s, _ in train["batch_loss"]] == [2, 4, 6, 8, 10, 12, 14]
    assert all(v > 0 for _, v in train["epoch_steps_per_second"] + train["batch_steps_per_second"])
    assert "batch_accuracy" in train


def test_weight_histograms(tmp_path, rng):
    history, logdir = _fit(tmp_path, rng, histogram_freq=2)
    train = _read_scalars(f"{logdir}/train")
    assert sorted(k for k in train if k.endswith("/histogram")) == [
        "sequential/dense/bias/histogram", "sequential/dense/kernel/histogram",
        "sequential/dense_1/bias/histogram", "sequential/dense_1/kernel/histogram"]
    steps = [s for s, _ in train["sequential/dense/kernel/histogram"]]
    assert steps == [0, 2]
    buckets = train["sequential/dense_1/kernel/histogram"][0][1]
    assert buckets.shape == (30, 3) and buckets[:, 2].sum() == 8 * 3
    assert np.all(buckets[1:, 0] == buckets[:-1, 1])  # (adjoining buckets)
    one_value = _tfevents.histogram_buckets(np.full(5, 2.0))
    assert np.all(one_value[:, :2] == 2.0) and one_value[-1, 2] == 5 and one_value[:-1, 2].sum() == 0
    data = rng.normal(size=1000)
    b = _tfevents.histogram_buckets(data)
    assert b[0, 0] == data.min() and b[-1, 1] == data.max() and b[:, 2].sum() == 1000
    np.testing.assert_array_equal(b[:, 2], np.histogram(data, bins=b[:, 0].tolist() +
                                                        [b[-1, 1]])[0])


def test_epoch_updates_keep_the_native_loop_and_args_are_checked(tmp_path):
    cb = callbacks.TensorBoard(str(tmp_path))
    assert not callbacks.CallbackList([cb]).needs_batch_hooks()
    assert callbacks.CallbackList([callbacks.TensorBoard(str(tmp_path), update_freq="batch")]
                                  ).needs_batch_hooks()
    for bad in ({"write_images": True}, {"profile_batch": 2}, {"embeddings_freq": 1}):
        with pytest.raises(NotImplementedError, match="scalars and weight histograms only"):
            callbacks.TensorBoard(str(tmp_path), **bad)
    with pytest.raises(ValueError, match="histogram_freq"):
        callbacks.TensorBoard(str(tmp_path), histogram_freq=-1)
    with pytest.raises(ValueError, match="update_freq"):
        callbacks.TensorBoard(str(tmp_path), update_freq="often")
    assert not os.listdir(tmp_path)  # (no file until something is logged)


def test_tensorboard_reads_the_files(tmp_path, rng):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    tensor_util = pytest.importorskip("tensorboard.util.tensor_util")
    history, logdir = _fit(tmp_path, rng)
    ea = accumulator.EventAccumulator(f"{logdir}/train", size_guidance={"tensors": 0})
    ea.Reload()
    assert "epoch_loss" in ea.Tags()["tensors"]
    values = [float(tensor_util.make_ndarray(e.tensor_proto)) for e in ea.Tensors("epoch_loss")]
    np.testing.assert_allclose(values, history["loss"])
    # the histograms as TensorBoard's own summary function buckets the same data
    summary_v2 = pytest.importorskip("tensorboard.plugins.histogram.summary_v2")
    data = rng.normal(size=(7, 5))
    theirs = tensor_util.make_ndarray(summary_v2.histogram_pb("t", data).value[0].tensor)
    np.testing.assert_array_equal(_tfevents.histogram_buckets(data), theirs)
    history, logdir = _fit(tmp_path / "h", rng, histogram_freq=1)
    ea = accumulator.EventAccumulator(f"{logdir}/train", size_guidance={"tensors": 0})
    ea.Reload()
    tag = next(t for t in ea.Tags()["tensors"] if t.endswith("/bias/histogram"))
    (event,) = ea.Tensors(tag)[:1]
    assert tensor_util.make_ndarray(event.tensor_proto).shape == (30, 3)
