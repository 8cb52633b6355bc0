"""datxai: reproducible DAT-SPECT (123I-FP-CIT) study workflow with a 3-D CNN and LRP."""

__version__ = "0.1.0"
