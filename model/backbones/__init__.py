"""Face embedding backbones (PyTorch) and their checkpoint loader."""

from model.backbones.iresnet import IResNet, iresnet50
from model.backbones.loading import extract_backbone_state, load_backbone
from model.backbones.mobilefacenet import MobileFaceNet

__all__ = ["IResNet", "MobileFaceNet", "extract_backbone_state", "iresnet50", "load_backbone"]
