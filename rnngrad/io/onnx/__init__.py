"""ONNX models (``rnngrad[onnx]``): :mod:`.reader` finds the RNN, LSTM and GRU operators,
:mod:`.stacks` joins the nodes of a multi-layer module, :mod:`.folding` computes their weights
from initializers with NumPy (no onnxruntime), :mod:`.tensors` reads tensors safely."""

# How to get recurrent nodes from PyTorch, for the error on a graph without any.
EXPORT_HINT = ("export with recurrent nodes: torch.onnx.export(model, args, path, dynamo=False) "
               "writes one RNN/GRU/LSTM node per layer; or name the recurrent matrix with --key")
