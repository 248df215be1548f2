"""The YAML presets (lm/, pos/), shipped inside the package as sparseseq_cli.configs."""
