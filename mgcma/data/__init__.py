"""The data layer: utterance records and manifests, the corpora's readers, augmentation, the
synthetic corpus (none of these needs PyTorch), and the batches that training reads (batching.py)."""
