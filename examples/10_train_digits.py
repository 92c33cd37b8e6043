"""How do I train a CNN end to end with convkit, the way I would in PyTorch?

The bundled 8x8 digits (1,438 training and 359 test images) need no download.
The loop below is what convkit.train.fit runs (fit adds progress bars,
checkpoints and resume): forward, loss, zero_grad, backward, step.
"""

import convkit
import convkit.functional as F
from convkit import data, models, optim

convkit.manual_seed(0)
train = data.DataLoader(data.digits(True, data.ToFloat(16)), batch_size=64, shuffle=True, seed=0)
test = data.DataLoader(data.digits(False, data.ToFloat(16)), batch_size=256)
net = models.digits_cnn()
opt = optim.Adam(net.parameters(), lr=1e-3)
print(f"digits_cnn: {sum(p.numel() for p in net.parameters()):,} parameters; "
      f"{len(train)} batches of 64 per epoch")

for epoch in range(3):
    net.train()
    for x, y in train:
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with convkit.no_grad():
        correct = sum(int((net(x).data.argmax(1) == y).sum()) for x, y in test)
    acc = correct / len(test.dataset)
    print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}, test accuracy {acc:.3f}")

if acc < 0.9:
    raise SystemExit(f"expected test accuracy >= 0.9 after 3 epochs; got {acc:.3f}")
print("OK: three epochs of the PyTorch-style loop reach", f"{acc:.3f}", "test accuracy")
