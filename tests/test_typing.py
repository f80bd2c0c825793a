"""The package type-checks: mypy over python/fastdense with the project's
settings (pyproject.toml's [tool.mypy]), against the stub of the native
module.  Programs that embed fastdense check their calls against these
annotations.  Skipped where mypy is not installed (it is in the test extras)
or the sources are not beside the tests."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "python" / "fastdense"


def test_package_type_checks(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    if not (PACKAGE / "__init__.py").is_file() or not (ROOT / "pyproject.toml").is_file():
        pytest.skip("the package's sources are not beside the tests")
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                "--cache-dir", str(tmp_path / "mypy_cache"),
                                "--no-error-summary", str(PACKAGE)])
    assert status == 0, out + err


def test_type_check_fails_on_a_wrong_call(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A user's wrong calls fail the check against the package's annotations."""
    api = pytest.importorskip("mypy.api")
    if not (PACKAGE / "__init__.py").is_file():
        pytest.skip("the package's sources are not beside the tests")
    monkeypatch.setenv("MYPYPATH", str(PACKAGE.parent))
    user = tmp_path / "user.py"
    user.write_text("from fastdense import _core\n"
                    "_core.set_num_threads('two')\n"
                    "net = _core.Network([4, 2], [0], [True])\n"
                    "net.predict(None, 8)\n", encoding="utf-8")
    out, _err, status = api.run(["--cache-dir", str(tmp_path / "mypy_cache"),
                                 "--no-error-summary", str(user)])
    assert status == 1
    assert 'incompatible type "str"; expected "int"' in out
    assert 'Argument 1 to "predict" of "Network" has incompatible type "None"' in out


KERAS_SCRIPT = """\
from fastdense import callbacks, layers, losses, metrics, models, optimizers
import fastdense as keras

def train(x, y, xt, yt) -> float:
    model = models.Sequential()
    model.add(layers.Dense(512, activation="relu", input_shape=(784,)))
    model.add(layers.Dense(10, activation="softmax"))
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=5, batch_size=128, validation_data=(xt, yt),
                        callbacks=[callbacks.EarlyStopping(monitor="val_loss", patience=2)])
    test_loss, test_acc = model.evaluate(xt, yt)
    probs = model.predict(xt[:10], batch_size=128)
    model.optimizer.learning_rate.assign(1e-4)
    m2 = keras.Sequential([keras.layers.Dense(64, activation="relu"),
                           keras.layers.Dense(1, activation="sigmoid")])
    m2.compile(optimizer=optimizers.RMSprop(learning_rate=1e-4),
               loss=losses.MeanSquaredError(), metrics=[metrics.BinaryAccuracy()])
    m2.set_weights(m2.get_weights())
    keras.set_num_threads(keras.get_num_threads())
    return float(history.history["loss"][-1]) + float(probs.sum()) + keras.__version__.count(".")
"""


def test_keras_workflow_type_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Keras workflow, import line changed, passes mypy against fastdense's
    annotations (as it does against Keras, which leaves these untyped)."""
    api = pytest.importorskip("mypy.api")
    if not (PACKAGE / "__init__.py").is_file():
        pytest.skip("the package's sources are not beside the tests")
    monkeypatch.setenv("MYPYPATH", str(PACKAGE.parent))
    user = tmp_path / "workflow.py"
    user.write_text(KERAS_SCRIPT, encoding="utf-8")
    out, err, status = api.run(["--cache-dir", str(tmp_path / "mypy_cache"),
                                "--no-error-summary", str(user)])
    assert status == 0, out + err
