"""Why does my network break when the image size changes, and what does each layer see?

convkit.explain answers with your own numbers: the output size of a layer
with the arithmetic filled in, how one output value is computed, and (through
the model summary) each layer's receptive field and the layer that breaks.
The same answers come from `convkit explain ...` and `convkit summary ...`.
"""
import numpy as np

import convkit.functional as F
from convkit import explain, models

# The first conv of the TF MNIST tutorial: 32 filters of 5x5, "same" padding.
e = explain.conv("1x1x28x28", out_channels=32, kernel_size=5, padding="same")
print(e.dims[0].text)
print(f"weight {e.weight_shape} (PyTorch) = kernel {e.weight_shape_tf} (TF), {e.params} parameters")

# A stride that does not tile: 28 - 5 = 23 is odd, so stride 2 rounds down.
try:
    explain.conv("1x1x28x28", out_channels=8, kernel_size=5, stride=2, strict=True)
except ValueError as err:
    print(f"strict: {err}")
else:
    raise SystemExit("strict mode accepted a stride that does not tile")

# One output value of a small convolution, term by term, against F.conv.
x = np.arange(1.0, 17.0).reshape(1, 4, 4)
w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])
one = explain.element(x, w, at=(0, 1, 2), stride=2, padding=1)
print(one.formula())
if not one.matches or one.value != F.conv(x, w, stride=2, padding=1)[0, 1, 2]:
    raise SystemExit("the element explanation disagrees with F.conv")

# The model summary: receptive fields grow layer by layer; a 32x32 image breaks the Linear layer.
s = models.mnist_cnn().summary((1, 28, 28))
last_pool = [r for r in s.rows if r.kind == "MaxPool2d"][-1]
print(f"after the second pool each cell sees {last_pool.receptive_field} pixels, "
      f"neighbours {last_pool.jump} pixels apart")
try:
    models.mnist_cnn().summary((1, 32, 32))
except ValueError as err:
    print(err)
    if "receives 4096" not in str(err):
        raise SystemExit("the mismatch report lost its numbers")
else:
    raise SystemExit("a 32x32 image should break mnist_cnn's Linear layer")
print("OK: explain answers with the numbers that convkit computes")
