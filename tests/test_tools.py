"""The developer tools' own logic (tools/): what can be checked without their builds."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import region_profile  # noqa: E402


@pytest.mark.parametrize("sym, name", [
    ("fastdense::detail::parallel_for_<fastdense::avx512::(anonymous namespace)::gemm_forward("
     "float*, float const*, long, fastdense::Activation)::{lambda(long)#2}>(long, fastdense::"
     "avx512::(anonymous namespace)::gemm_forward(float*, float const*, long, fastdense::"
     "Activation)::{lambda(long)#2}&&, bool)::{lambda(void*, long)#1}::_FUN(void*, long)",
     "gemm_forward#2"),
    ("fastdense::detail::parallel_for_<fastdense::Network::select_columns(fastdense::Network::"
     "Workspace&, float const*, long const*, long, long, bool) const::{lambda(long)#3}>(long, "
     "fastdense::Network::select_columns(fastdense::Network::Workspace&, float const*, long "
     "const*, long, long, bool) const::{lambda(long)#3}&&, bool)::{lambda(void*, long)#1}::"
     "_FUN(void*, long)",
     "Network::select_columns#3"),
    ("fastdense::detail::parallel_for_<fastdense::(anonymous namespace)::parallel<float>(float "
     "const*, long)::{lambda(long)#1}>(long)", "parallel<float>#1"),
    ("fastdense::generic::narrow(float*)", "fastdense::generic::narrow(float*)"[:60]),
])
def test_region_profile_names_regions_by_their_function(sym, name):
    assert region_profile.region_name(sym) == name


@pytest.mark.parametrize("threads", ["0", "2x", "s", "-1", "2,,x"])
def test_region_profile_rejects_bad_thread_configurations(threads, tmp_path, capsys):
    (tmp_path / "fastdense").mkdir()
    (tmp_path / "fastdense" / "_core.so").write_bytes(b"")
    sys.argv = ["region_profile.py", "--pkg", str(tmp_path), "--threads", threads]
    with pytest.raises(SystemExit) as e:
        region_profile.main()
    assert "--threads" in str(e.value) and "received" in str(e.value)


def test_package_build_prints_no_region_profile():
    # The region totals exist only in profiling builds (-DFASTDENSE_PROFILE_REGIONS=ON):
    # a program embedding fastdense gets nothing on stderr from training.
    code = (
        "import numpy as np\n"
        "from fastdense import models, layers\n"
        "m = models.Sequential([layers.Dense(64, activation='relu', input_shape=(20,)),"
        " layers.Dense(1, activation='sigmoid')])\n"
        "m.compile(optimizer='adam', loss='binary_crossentropy')\n"
        "x = np.random.default_rng(0).random((512, 20), dtype=np.float32)\n"
        "m.fit(x, (x[:, 0] > 0.5).astype('float32'), epochs=2, batch_size=64, verbose=0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "fastdense-region" not in proc.stderr and "fastdense-gaps" not in proc.stderr
    assert proc.stdout == ""
