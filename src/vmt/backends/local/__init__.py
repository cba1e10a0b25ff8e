"""The local backend: a small anchor-free object detector in pure PyTorch (no torchvision).

Importing this package does not import PyTorch; training and prediction do.
"""

from vmt.backends.local.trainer import LocalTrainer
from vmt.backends.local.training_config import DEFAULT_TRAIN_SECONDS, TrainConfig, TrainProgress

__all__ = ["DEFAULT_TRAIN_SECONDS", "LocalTrainer", "TrainConfig", "TrainProgress"]
