import subprocess
import sys

import amago_fast


def test_version_is_exposed():
    assert isinstance(amago_fast.__version__, str) and amago_fast.__version__.count(".") >= 2


def test_native_module_imports():
    from amago_fast import _C

    assert _C.__doc__


def test_kernels_ship_inside_the_package():
    import amago_fast.kernels

    assert "amago_fast" in amago_fast.kernels.__name__


def test_import_is_light():
    # `import amago_fast` must not pull in torch or triton (lazy exports).
    code = "import sys, amago_fast; print('torch' in sys.modules, 'triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no_such_thing"):
        amago_fast.no_such_thing
