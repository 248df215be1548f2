"""Presets and configuration: find, load, ``extends``, ``--set`` overrides, validation, dump.

    schema.py    the dataclasses of each task (their defaults are the only defaults)
    presets.py   the shipped presets: list them, find one by name
    loading.py   resolve a configuration from its sources, round-trip it as plain data/YAML
    coercion.py  values and keys from YAML or --set made into the schema's fields
    checks.py    value ranges and feasible sparse settings
"""
from sparseseq_cli.config.coercion import parse_override
from sparseseq_cli.config.loading import config_from_dict, config_to_dict, dump_config, load_config, run_name
from sparseseq_cli.config.presets import PresetInfo, list_presets, preset_path
from sparseseq_cli.config.schema import (SCHEMAS, SECTIONS, Config, LMConfig, LMData, LMModel, LMTrain,
                                         Log, OptimizerName, POSConfig, POSData, POSModel, POSTrain, Precision)
from sparseseq_cli.tasks import Task

__all__ = [
    "Config", "LMConfig", "LMData", "LMModel", "LMTrain", "Log", "OptimizerName", "Precision", "POSConfig", "POSData",
    "POSModel", "POSTrain", "PresetInfo", "SCHEMAS", "SECTIONS", "Task", "config_from_dict",
    "config_to_dict", "dump_config", "list_presets", "load_config", "parse_override", "preset_path",
    "run_name",
]
