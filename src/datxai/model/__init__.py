"""The 3-D CNN (architecture, training, evaluation) of the DAT-SPECT studies.

Entry points: :func:`build_model`, :func:`load_model`, :func:`count_parameters`,
:func:`train_model` (see :mod:`.train`), :func:`table1` (see :mod:`.evaluate`).
"""

from .net import CLASSES, DatCNN, build_model, count_parameters, load_model, probabilities, save_model

__all__ = ["CLASSES", "DatCNN", "build_model", "count_parameters", "load_model", "probabilities", "save_model"]
