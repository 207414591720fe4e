#!/usr/bin/python3
"""The kiln benchmark cases in PyTorch (Debian's python3-torch 1.13, OpenBLAS), for the
comparison table in bench/README.md. Prints one line per case in kiln_bench's format:

  <model> <mode> batch=<N> image=<H> pytorch-<variant>: median <s> s/run, <images/s> images/s

Models match bench/models.h: LeNet-5 (conv 6x5x5 relu, maxpool 2, conv 16x3x3 relu,
maxpool 2, dense 120 relu, 84 relu, 10) and VGG-11 (configuration A); the zoo models
(graph/zoo.h) are torchvision 0.14's (resnet18_v1 = resnet18, resnet50_v1 = resnet50,
mobilenet_v2_1.0 = mobilenet_v2), 1000 classes, random weights. Training = forward,
softmax cross-entropy, backward, SGD with momentum 0.9 (eager). Inference = eager under
torch.no_grad() and TorchScript (torch.jit.trace + freeze). --onnx PATH also writes the
inference model with torch.onnx.export (opset 13, fixed batch) for bench/ort_bench.js.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torchvision

ZOO = {"resnet18_v1": "resnet18", "resnet50_v1": "resnet50", "mobilenet_v2_1.0": "mobilenet_v2"}

from blas_check import describe as describe_blas


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 3), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def vgg11(image, fc=4096):
    layers, c = [], 3
    for convs, channels in [(1, 64), (1, 128), (2, 256), (2, 512), (2, 512)]:
        for _ in range(convs):
            layers += [nn.Conv2d(c, channels, 3, padding=1), nn.ReLU()]
            c = channels
        layers.append(nn.MaxPool2d(2, 2))
    side = image // 32
    layers += [nn.Flatten(), nn.Linear(512 * side * side, fc), nn.ReLU(), nn.Linear(fc, fc), nn.ReLU(),
               nn.Linear(fc, 10)]
    return nn.Sequential(*layers)


def timed(fn, iters, warmup):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", choices=["lenet", "vgg11"] + sorted(ZOO), default="lenet")
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--image", type=int, default=0)
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--onnx", default="", help="inference: also export the model to this ONNX file")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    if a.model == "lenet":
        image = a.image or 28
        net, shape = lenet(), (a.batch, 1, image, image)
    elif a.model == "vgg11":
        image = a.image or 224
        net, shape = vgg11(image), (a.batch, 3, image, image)
    else:
        image = a.image or 224
        net, shape = getattr(torchvision.models, ZOO[a.model])(weights=None), (a.batch, 3, image, image)
    x = torch.rand(shape)
    y = torch.arange(a.batch) % 10
    results = []
    if a.mode == "train":
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss_fn(net(x), y).backward()
            opt.step()
        results.append(("eager", timed(step, a.iters, a.warmup)))
    else:
        net.eval()
        with torch.no_grad():
            results.append(("eager", timed(lambda: net(x), a.iters, a.warmup)))
            scripted = torch.jit.freeze(torch.jit.trace(net, x))
            if a.onnx:
                torch.onnx.export(net, x, a.onnx, opset_version=13, input_names=["data"], output_names=["output"])
            results.append(("torchscript", timed(lambda: scripted(x), a.iters, a.warmup)))
    blas, _ = describe_blas()  # printed with every row: figures on the reference BLAS are not comparable
    for variant, med in results:
        print(f"{a.model} {a.mode} batch={a.batch} image={image} pytorch-{variant}: median {med:.6f} s/run, "
              f"{a.batch / med:.0f} images/s, blas={blas}", flush=True)


if __name__ == "__main__":
    main()
