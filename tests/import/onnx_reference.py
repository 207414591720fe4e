#!/usr/bin/python3
"""Writes an ONNX model exported by torch.onnx.export (Debian python3-torch 1.13,
python3-torchvision 0.14) with random weights, a random input batch and PyTorch's output,
for tests/import/onnx_compare (kiln's import of the file against PyTorch on the same input).

    onnx_reference.py MODEL SIZE BATCH OPSET OUT_DIR [--dynamic]

MODEL: a torchvision name (resnet18, mobilenet_v2, mobilenet_v3_small, squeezenet1_1,
densenet121, googlenet, efficientnet_b0) or "lenet" (the Gluon tutorial's LeNet-5 on
1x28x28). BatchNorm statistics, scales and shifts are randomized so that inference batch
norm is not the identity. --dynamic exports the batch dim as symbolic ("N").
Writes OUT_DIR/model.onnx, input.bin and output.bin (float32, row-major) and shape.txt
("N C H W" of the input, then the output's dims).
"""
import os
import sys

import torch
import torch.nn as nn
import torchvision


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def main():
    name, size, batch, opset, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    dynamic = "--dynamic" in sys.argv[6:]
    torch.manual_seed(0)
    if name == "lenet":
        net, channels = lenet(), 1
    else:
        kwargs = {"weights": None, "num_classes": 10}
        if name == "googlenet":
            kwargs.update(aux_logits=False, init_weights=True)
        net, channels = getattr(torchvision.models, name)(**kwargs), 3
    g = torch.Generator().manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    net.eval()
    x = torch.rand(batch, channels, size, size, generator=g)
    with torch.no_grad():
        y = net(x)
    os.makedirs(out, exist_ok=True)
    axes = {"data": {0: "N"}, "output": {0: "N"}} if dynamic else None
    torch.onnx.export(net, x, os.path.join(out, "model.onnx"), opset_version=opset, input_names=["data"],
                      output_names=["output"], dynamic_axes=axes)
    x.numpy().astype("float32").tofile(os.path.join(out, "input.bin"))
    y.numpy().astype("float32").tofile(os.path.join(out, "output.bin"))
    with open(os.path.join(out, "shape.txt"), "w") as f:
        f.write(" ".join(str(d) for d in x.shape) + "\n" + " ".join(str(d) for d in y.shape) + "\n")


if __name__ == "__main__":
    main()
