"""The written-out Adam equals torch.optim.Adam step for step."""

import torch

from dmbp_onnx.methods.dmbp.optimiser import Adam


def test_same_iterates_as_torch_adam():
    g = torch.Generator().manual_seed(0)
    ours = [torch.rand(2, 3, 5, generator=g), torch.rand(2, 3, 7, generator=g)]
    theirs = [t.clone().requires_grad_(True) for t in ours]
    mine, reference = Adam(ours, lr=0.25), torch.optim.Adam(theirs, lr=0.25)
    for _ in range(6):
        grads = [torch.randn(t.shape, generator=g) for t in ours]
        for a, b, grad in zip(ours, theirs, grads):
            a.grad, b.grad = grad.clone(), grad.clone()
        mine.step()
        reference.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b.detach())
