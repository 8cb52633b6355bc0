"""The torchvision stand-in: installed only when the real torchvision cannot be imported."""

import subprocess
import sys
import textwrap


def _run(code: str, env_path: str | None = None) -> str:
    pre = f"import sys; sys.path.insert(0, {env_path!r})\n" if env_path else ""
    res = subprocess.run([sys.executable, "-c", pre + textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_stub_when_torchvision_is_broken(tmp_path):
    """A torchvision whose import raises the error of a mismatched CPU build -> stand-in, zennit imports."""
    pkg = tmp_path / "torchvision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from . import extension\nraise RuntimeError('operator torchvision::nms does not exist')\n")
    (pkg / "extension.py").write_text("")
    out = _run("""
        from datxai.explain.torchvision_compat import import_zennit, torchvision_is_stub
        zennit = import_zennit()
        import torchvision.models.resnet as r
        from zennit.torchvision import ResNetCanonizer
        print(torchvision_is_stub(), r.BasicBlock.__module__, hasattr(zennit.rules, 'AlphaBeta'),
              'torchvision.extension' in sys.modules)
    """, str(tmp_path))
    assert out == "True torchvision.models.resnet True False"


def test_noop_when_torchvision_works(tmp_path):
    """A working torchvision is used as is (the stand-in is not installed)."""
    res = tmp_path / "torchvision" / "models"
    res.mkdir(parents=True)
    (tmp_path / "torchvision" / "__init__.py").write_text("from . import models\nREAL = True\n")
    (res / "__init__.py").write_text("from . import resnet\n")
    (res / "resnet.py").write_text(
        "import torch\nclass BasicBlock(torch.nn.Module): pass\nclass Bottleneck(torch.nn.Module): pass\n")
    out = _run("""
        from datxai.explain.torchvision_compat import import_zennit, torchvision_is_stub
        import_zennit()
        import torchvision
        print(torchvision_is_stub(), getattr(torchvision, 'REAL', False))
    """, str(tmp_path))
    assert out == "False True"


def test_stub_offers_nothing_else(tmp_path):
    """Anything beyond what zennit needs fails loudly instead of silently."""
    pkg = tmp_path / "torchvision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("raise ImportError('broken build')\n")
    out = _run("""
        from datxai.explain.torchvision_compat import ensure_torchvision
        print(ensure_torchvision(), ensure_torchvision())
        try:
            from torchvision.ops import nms
        except ImportError:
            print('ImportError')
    """, str(tmp_path))
    assert out.splitlines() == ["True True", "ImportError"]
