"""Shared by the rule adapters in scripts/: route logging to the rule's log file."""

import logging


def setup_logging(snakemake) -> logging.Logger:
    """Send the package's logging (and warnings) to ``snakemake.log[0]``; return the script's logger."""
    handlers = [logging.FileHandler(snakemake.log[0], mode="w")] if snakemake.log else [logging.StreamHandler()]
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    return logging.getLogger(f"datxai.rule.{snakemake.rule}")
