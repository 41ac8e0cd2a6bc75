"""ONNX models (``rnngrad[onnx]``): :mod:`.reader` finds the RNN, LSTM and GRU operators,
:mod:`.folding` computes their weights from initializers with NumPy (no onnxruntime)."""
