"""The PyTorch lowering: fx module, emitted source, verification."""
