#!/usr/bin/python3
"""Reference outputs of a torchvision 0.14 model for tests/zoo/zoo_compare.

Builds the model with random weights (no downloads), calibrates the BatchNorm running
statistics on one random batch (torch momentum 1 for one forward in train mode, so inference
sees realistic statistics), then writes, in kiln's parameter names (BatchNorm weight/bias ->
gamma/beta, num_batches_tracked dropped):
  param:<name>       every parameter and running statistic before the step
  input, label       a batch [N,3,H,W] and its labels
  eval_logits        model.eval()(input)
  train_logits, train_loss   model.train() forward, per-sample cross-entropy
  grad:<name>        d(sum of the per-sample losses)/d(param) (kiln's TrainStep::Gradient)
  grad64:<name>      the same computed by torch in float64: the arbiter of both float32
                     results (BatchNorm's batch-statistics backward cancels, so float32
                     gradients carry rounding noise of their own)
  new:<name>         after one SGD step (lr 0.1, momentum 0) on the mean loss: parameters,
                     and running statistics converted to kiln's convention (running_var
                     folds the biased batch variance: torch folds var * m/(m-1)).
Dropout and stochastic depth are set to p = 0 (their masks are random draws).
Output: <dir>/manifest.txt ("<key> <d0,d1,...>" per line) and <dir>/data.bin (the f32
values in manifest order, little-endian).
Usage: torch_reference.py MODEL H N CLASSES DIR [infer]   ("infer": parameters, input and
eval_logits only, for models whose training entries would be gigabytes, e.g. vgg11_bn)
"""
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

NAMES = {
    "resnet18_v1": lambda c: torchvision.models.resnet18(num_classes=c),
    "resnet50_v1": lambda c: torchvision.models.resnet50(num_classes=c),
    "mobilenet_v2_1.0": lambda c: torchvision.models.mobilenet_v2(num_classes=c),
    "mobilenet_v3_small": lambda c: torchvision.models.mobilenet_v3_small(num_classes=c),
    "densenet121": lambda c: torchvision.models.densenet121(num_classes=c),
    "squeezenet1.1": lambda c: torchvision.models.squeezenet1_1(num_classes=c),
    "vgg11_bn": lambda c: torchvision.models.vgg11_bn(num_classes=c),
    "googlenet": lambda c: torchvision.models.googlenet(num_classes=c, aux_logits=False, init_weights=True),
    "efficientnet_b0": lambda c: torchvision.models.efficientnet_b0(num_classes=c),
}


def main():
    name, h, n, classes, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.manual_seed(0)
    torch.set_num_threads(2)
    model = NAMES[name](classes)
    bns = {}
    for mname, m in model.named_modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        if type(m).__name__ == "StochasticDepth":
            m.p = 0.0
        if isinstance(m, nn.BatchNorm2d):
            bns[mname] = m
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    # Calibrate the running statistics on one batch, then restore the momenta.
    momenta = {k: m.momentum for k, m in bns.items()}
    for m in bns.values():
        m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(torch.randn(n, 3, h, h))
    for k, m in bns.items():
        m.momentum = momenta[k]

    def kiln_name(key):
        mod, _, leaf = key.rpartition(".")
        if mod in bns:
            return {"weight": mod + ".gamma", "bias": mod + ".beta"}.get(leaf, key)
        return key

    entries = []
    state = {k: v.detach().clone() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    for k, v in state.items():
        entries.append(("param:" + kiln_name(k), v))
    x = torch.randn(n, 3, h, h)
    label = torch.randint(0, classes, (n,))
    entries.append(("input", x))
    entries.append(("label", label.float()))
    model.eval()
    with torch.no_grad():
        entries.append(("eval_logits", model(x)))
    if len(sys.argv) > 6 and sys.argv[6] == "infer":
        write(out, entries)
        return
    # One training step; record each BatchNorm's element count per channel m = N*H*W.
    counts = {}
    hooks = [m.register_forward_hook(lambda mod, inp, o, k=k: counts.__setitem__(k, inp[0].numel() // inp[0].shape[1]))
             for k, m in bns.items()]
    model.train()
    # The float64 arbiter: the same weights, input and step in double precision.
    model64 = copy.deepcopy(model).double()
    losses64 = F.cross_entropy(model64(x.double()), label, reduction="none")
    losses64.mean().backward()
    grads64 = {k: p.grad.detach() * n for k, p in model64.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.0)
    opt.zero_grad()
    logits = model(x)
    losses = F.cross_entropy(logits, label, reduction="none")
    losses.mean().backward()
    for h_ in hooks:
        h_.remove()
    entries.append(("train_logits", logits.detach()))
    entries.append(("train_loss", losses.detach()))
    for k, p in model.named_parameters():
        entries.append(("grad:" + kiln_name(k), p.grad.detach() * n))
        entries.append(("grad64:" + kiln_name(k), grads64[k]))
    opt.step()
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        v = v.detach().clone()
        mod, _, leaf = k.rpartition(".")
        if mod in bns and leaf == "running_var":
            mom = bns[mod].momentum
            m = counts[mod]
            old = state[k]
            v = (1 - mom) * old + (v - (1 - mom) * old) * (m - 1) / m
        entries.append(("new:" + kiln_name(k), v))
    write(out, entries)


def write(out, entries):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "manifest.txt"), "w") as man, open(os.path.join(out, "data.bin"), "wb") as data:
        for key, t in entries:
            t = t.contiguous().float()
            man.write("%s %s\n" % (key, ",".join(str(d) for d in t.shape) if t.dim() else "-"))
            data.write(t.numpy().astype("<f4").tobytes())


if __name__ == "__main__":
    main()
