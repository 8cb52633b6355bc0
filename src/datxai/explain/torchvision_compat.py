"""Import zennit even where torchvision is broken.

``import zennit`` imports ``zennit.torchvision``, which does
``from torchvision.models.resnet import Bottleneck, BasicBlock`` (only to define
ResNet canonizers that datxai never uses). With a CPU-only torch wheel and a
torchvision built for another torch, ``import torchvision`` fails with
``RuntimeError: operator torchvision::nms does not exist``.

:func:`import_zennit` first tries the real torchvision. If that import fails
for any reason, it removes the half-imported ``torchvision.*`` entries from
``sys.modules`` and installs a minimal stand-in package holding exactly what
zennit touches (``torchvision.models.resnet.BasicBlock`` / ``Bottleneck``, two
empty ``nn.Module`` subclasses), then imports zennit. Where torchvision works
this is a no-op. The stand-in is marked by ``__datxai_stub__ = True``; any
other use of ``torchvision`` in that process fails loudly with
``AttributeError``/``ImportError`` rather than silently doing something.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types

logger = logging.getLogger(__name__)

STUB_MARK = "__datxai_stub__"


def _stub_modules() -> dict[str, types.ModuleType]:
    """Build the stand-in ``torchvision``, ``torchvision.models``, ``torchvision.models.resnet``."""
    import torch

    tv = types.ModuleType("torchvision")
    models = types.ModuleType("torchvision.models")
    resnet = types.ModuleType("torchvision.models.resnet")

    class BasicBlock(torch.nn.Module):
        """Stand-in for torchvision's ResNet BasicBlock (never instantiated by datxai)."""

        expansion = 1

    class Bottleneck(torch.nn.Module):
        """Stand-in for torchvision's ResNet Bottleneck (never instantiated by datxai)."""

        expansion = 4

    for cls in (BasicBlock, Bottleneck):
        cls.__module__ = "torchvision.models.resnet"
    resnet.BasicBlock, resnet.Bottleneck = BasicBlock, Bottleneck
    resnet.__all__ = ["BasicBlock", "Bottleneck"]
    models.resnet = resnet
    tv.models = models
    tv.__version__ = "0+datxai.stub"
    # a package, so that `import torchvision.models.resnet` resolves through sys.modules
    tv.__path__, models.__path__ = [], []
    for mod in (tv, models, resnet):
        setattr(mod, STUB_MARK, True)
    return {"torchvision": tv, "torchvision.models": models, "torchvision.models.resnet": resnet}


def torchvision_is_stub() -> bool:
    """True when the ``torchvision`` in ``sys.modules`` is datxai's stand-in."""
    return bool(getattr(sys.modules.get("torchvision"), STUB_MARK, False))


def ensure_torchvision() -> bool:
    """Make ``import torchvision.models.resnet`` succeed. Returns True if the stand-in was installed."""
    if "torchvision" in sys.modules and (torchvision_is_stub() or "torchvision.models.resnet" in sys.modules):
        return torchvision_is_stub()
    try:
        importlib.import_module("torchvision.models.resnet")
        return False
    except Exception as exc:  # RuntimeError (operator ... does not exist), ImportError, OSError
        logger.info("torchvision unusable (%s: %s); installing a minimal stand-in for zennit",
                    type(exc).__name__, exc)
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    sys.modules.update(_stub_modules())
    return True


def import_zennit():
    """Import and return the ``zennit`` package, installing the torchvision stand-in if needed."""
    if "zennit" not in sys.modules:
        ensure_torchvision()
    return importlib.import_module("zennit")
