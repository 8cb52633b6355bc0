"""Load and validate a datxai configuration (used by the workflow and the CLI).

The JSON schema (``datxai/data/config.schema.yaml``, linked from
``workflow/schemas/``) checks types, enums and bounds and fills defaults;
:func:`check_semantics` adds what a schema cannot express (a box inside the
grid, split sizes that fit). Errors name the key and the bad value.
"""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import resources
from pathlib import Path

import yaml

from .grid import Grid


class ConfigError(ValueError):
    """A config that does not validate; the message names the key and the value."""


def schema() -> dict:
    """The config's JSON schema (parsed with libyaml's loader when PyYAML has it: ~10x faster, same result)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with resources.files("datxai").joinpath("data/config.schema.yaml").open() as fh:
        return yaml.load(fh, Loader=loader)


def _defaults(props: dict) -> dict:
    """Defaults of ``properties``, nested objects filled as validation fills them (their own defaults first)."""
    out = {}
    for k, v in props.items():
        if "default" not in v:
            continue
        d = copy.deepcopy(v["default"])
        if isinstance(d, dict) and "properties" in v:
            d = {**_defaults(v["properties"]), **d}
        out[k] = d
    return out


def section_defaults(section: str) -> dict:
    """The schema's defaults of one top-level section (e.g. ``reconstruct``): the one source of defaults."""
    return _defaults(schema()["properties"][section].get("properties", {}))


def _fill_defaults(validator_cls):
    from jsonschema import validators

    validate_props = validator_cls.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return validators.extend(validator_cls, {"properties": set_defaults})


def validate_config(config: dict, source: str = "config") -> dict:
    """Validate ``config`` in place (defaults filled) and return it.

    Raises :class:`ConfigError` with one line per problem:
    ``config: grid.voxel_mm: -1 is less than the minimum of 0``.
    """
    from jsonschema import Draft202012Validator

    if not isinstance(config, dict):
        raise ConfigError(f"{source}: the config must be a mapping, got {type(config).__name__}")
    validator = _fill_defaults(Draft202012Validator)(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = []
        for e in errors:
            key = ".".join(str(p) for p in e.absolute_path) or "(top level)"
            lines.append(f"{source}: {key}: {e.message}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    check_semantics(config, source)
    return config


def check_semantics(config: dict, source: str = "config") -> None:
    """Checks beyond the schema: grid symmetry, the striatum box inside the grid, split sizes."""
    problems = []
    try:
        grid = Grid.from_config(config["grid"])
    except ValueError as exc:
        raise ConfigError(f"{source}: grid: {exc}") from exc
    box = config.get("settings", {}).get("striatum_box_mm")
    if box is not None:
        for ax, (lo, hi) in enumerate(box):
            c = grid.axis_mm(ax)
            if not lo < hi:
                problems.append(f"settings.striatum_box_mm[{ax}]: min {lo} must be < max {hi}")
            elif lo < c[0] - grid.voxel_mm / 2 or hi > c[-1] + grid.voxel_mm / 2:
                problems.append(
                    f"settings.striatum_box_mm[{ax}]: [{lo}, {hi}] mm lies outside the grid "
                    f"({c[0]:.1f} .. {c[-1]:.1f} mm on {'xyz'[ax]})"
                )
    sizes = config.get("split", {}).get("sizes")
    if sizes:
        vals = [sizes["train"], sizes["val"], sizes["test"]]
        if all(v <= 1 for v in vals):
            if abs(sum(vals) - 1) > 1e-6:
                problems.append(f"split.sizes: fractions must sum to 1, got {sum(vals):g}")
        elif any(v != int(v) for v in vals):
            problems.append(f"split.sizes: give all fractions (<= 1) or all counts (integers), got {sizes}")
        elif config.get("cohort", {}).get("source", "synthetic") == "synthetic":
            n = config.get("simulate", {}).get("n_subjects", 0)
            if sum(vals) > n:
                problems.append(f"split.sizes: {int(sum(vals))} subjects requested but simulate.n_subjects is {n}")
    for s in config.get("group", {}).get("settings", []):
        if s not in config.get("settings", {}).get("names", [s]):
            problems.append(f"group.settings: {s!r} is not among settings.names")
    roi = config.get("stats", {}).get("roi_setting")
    if roi and roi not in config.get("group", {}).get("settings", [roi]):
        problems.append(f"stats.roi_setting: {roi!r} is not among group.settings")
    src = config.get("cohort", {}).get("source", "synthetic")
    if src != "synthetic" and not config["cohort"].get("participants"):
        problems.append(f"cohort.participants: required when cohort.source is {src!r}")
    if src != "synthetic" and not config["cohort"].get("images"):
        problems.append(f"cohort.images: required when cohort.source is {src!r} (a path pattern with {{subject}})")
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(f"{source}: {p}" for p in problems))


def load_config(path, overrides: dict | None = None) -> dict:
    """Read a YAML config, apply shallow ``overrides``, validate, return it."""
    path = Path(path)
    try:
        with open(path) as fh:
            cfg = yaml.safe_load(fh) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    cfg.update(overrides or {})
    return validate_config(cfg, source=str(path))


def derive_seed(master: int, *keys) -> int:
    """A stable 32-bit seed for one random step, from the master seed and names (e.g. 'simulate', 'sub-0001')."""
    h = hashlib.sha256(json.dumps([int(master), *map(str, keys)]).encode()).digest()
    return int.from_bytes(h[:4], "little")
