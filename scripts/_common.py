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



class BatchError(RuntimeError):
    """Some subjects of a batch job failed; the message names each with its reason."""


def run_batch(snakemake, logger, work) -> list:
    """Run ``work(i, subject)`` for each subject of a batch job, in order; return the results.

    The subjects are ``params.subjects``; entry ``i`` of every input/output list
    belongs to subject ``i``. Progress goes to the log. A subject that fails is
    logged and the others still run, so one run names every bad input of the
    batch; then the job fails with a :class:`BatchError` listing the failed
    subjects and their reasons (Snakemake removes the batch's outputs, so
    nothing is left half-written; other batches go on under ``--keep-going``).
    """
    import time

    subjects = list(snakemake.params.subjects)
    start = time.perf_counter()
    results, failed = [], []
    for i, subject in enumerate(subjects):
        t0 = time.perf_counter()
        try:
            results.append(work(i, subject))
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the rest of the batch
            logger.error("%s (%d/%d) failed: %s: %s", subject, i + 1, len(subjects), type(exc).__name__, exc)
            failed.append((subject, exc))
            continue
        logger.info("%s done (%d/%d, %.2f s)", subject, i + 1, len(subjects), time.perf_counter() - t0)
    logger.info("%d of %d subjects in %.1f s", len(subjects) - len(failed), len(subjects), time.perf_counter() - start)
    if failed:
        reasons = "\n".join(f"  {subject}: {type(exc).__name__}: {exc}" for subject, exc in failed)
        raise BatchError(f"{len(failed)} of {len(subjects)} subjects of rule {snakemake.rule} failed "
                         f"(the batch's outputs are discarded):\n{reasons}") from failed[0][1]
    return results
