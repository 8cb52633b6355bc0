"""Shared by the rule adapters in scripts/: route logging to the rule's log file."""

import logging
import sys


def setup_logging(snakemake) -> logging.Logger:
    """Send the package's logging (and warnings) to ``snakemake.log[0]``; return the script's logger."""
    handlers = [logging.FileHandler(snakemake.log[0], mode="w")] if snakemake.log else [logging.StreamHandler()]
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.captureWarnings(True)
    logger = logging.getLogger(f"datxai.rule.{snakemake.rule}")

    def log_uncaught(exc_type, exc, tb):  # the log file says why the job failed, not only the console
        logger.error("failed: %s: %s", exc_type.__name__, exc)
        sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = log_uncaught
    return logger
