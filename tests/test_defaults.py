"""One source of defaults: the config schema. What the package offers to Python callers agrees with it."""

import pytest

from datxai.config import section_defaults, validate_config


def test_section_defaults_are_what_validation_fills():
    cfg = validate_config({"grid": {"shape": [71, 90, 72], "voxel_mm": 2.0}})
    for section in ("reconstruct", "normalize", "scale", "quantify", "explain", "group"):
        assert {k: cfg[section][k] for k in section_defaults(section)} == section_defaults(section), section


def test_reconstruction_defaults_come_from_the_schema():
    from datxai.recon import DEFAULTS, resolve_params

    assert DEFAULTS == section_defaults("reconstruct")
    assert resolve_params({}) == section_defaults("reconstruct")
    # keys of the removed torch engine are refused by name (the CLI's and Python callers' path)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['backend', 'device'\]"):
        resolve_params({"backend": "torch", "device": "cuda"})


def test_lrp_dataclass_defaults_match_the_schema():
    from datxai.explain.lrp import LRPConfig

    assert LRPConfig() == LRPConfig.from_config(section_defaults("explain"))
