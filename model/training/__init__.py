"""Training and fine-tuning of the embedding backbones (scripts/train.py is the command line).

data (folders, identity-disjoint split, chip cache, pairs) -> augment / sampling -> heads, losses, schedule ->
trainer (loop, checkpoints, exact resume) -> validation (pair accuracy per epoch) -> publish (ONNX, model card).
Imported by module, not from here: torch loads only where training does.
"""
