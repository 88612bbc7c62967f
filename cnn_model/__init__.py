"""MedSight's CNNs: modality specs, shared preprocessing, training, export and the LiteRT runtime.

Importing this package (or the runtime) never imports TensorFlow; only training and export do.
"""

from .modalities import MODALITIES, SPECS, get_spec

__all__ = ["MODALITIES", "SPECS", "get_spec"]
