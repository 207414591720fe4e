#!/usr/bin/env python3
"""A KServe v2 gRPC client for kiln-serve (or any KServe v2 / Triton gRPC server).

Generates the protocol's Python messages from serve/proto/grpc_predict_v2.proto with protoc
(Debian protobuf-compiler) into a temporary folder, then calls ServerLive, ModelMetadata and
ModelInfer through grpcio (Debian python3-grpcio) without generated service stubs.

  /usr/bin/python3 tools/grpc_client.py localhost:8004 lenet [--batch 2] [--token-file F]

Sends `batch` images (FP32, raw_input_contents, shape from the model's metadata with the
batch dim set; pixel values: a fixed pattern normalized as the main job's), prints the
metadata, each image's arg-max class and the call's latency, and exits 1 on any error.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile
import time

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "serve", "proto")


def load_messages():
    out = tempfile.mkdtemp(prefix="kiln_grpc_")
    subprocess.run(["protoc", "-I", PROTO_DIR, "--python_out", out,
                    os.path.join(PROTO_DIR, "grpc_predict_v2.proto")], check=True)
    sys.path.insert(0, out)
    import grpc_predict_v2_pb2  # noqa: E402 (generated above)
    return grpc_predict_v2_pb2


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("address", help="host:port of the gRPC endpoint (kiln-serve --grpc-port)")
    p.add_argument("model", help="model name")
    p.add_argument("--batch", type=int, default=1, help="images in the request")
    p.add_argument("--token-file", help="file whose first line is the bearer token")
    args = p.parse_args()
    pb = load_messages()
    channel = grpc.insecure_channel(args.address)
    service = "/inference.GRPCInferenceService/"

    def call(method, request, response_type):
        rpc = channel.unary_unary(service + method, request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=response_type.FromString)
        metadata = []
        if args.token_file:
            with open(args.token_file) as f:
                metadata.append(("authorization", "Bearer " + f.readline().strip()))
        return rpc(request, timeout=30, metadata=metadata)

    try:
        live = call("ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse)
        meta = call("ModelMetadata", pb.ModelMetadataRequest(name=args.model), pb.ModelMetadataResponse)
        print("live: %s; model %s versions %s platform %s" % (live.live, meta.name, list(meta.versions), meta.platform))
        for t in meta.inputs:
            print("  input  %s %s %s" % (t.name, t.datatype, list(t.shape)))
        for t in meta.outputs:
            print("  output %s %s %s" % (t.name, t.datatype, list(t.shape)))
        request = pb.ModelInferRequest(model_name=args.model, id="grpc_client")
        for t in meta.inputs:
            shape = [args.batch] + list(t.shape[1:])
            count = 1
            for d in shape:
                count *= d
            # The values go in raw_input_contents, in the order of `inputs`.
            request.inputs.add(name=t.name, datatype="FP32", shape=shape)
            pixels = [((i * 37) % 256 / 255.0 - 0.13) / 0.31 for i in range(count)]
            request.raw_input_contents.append(struct.pack("<%df" % count, *pixels))
        start = time.perf_counter()
        response = call("ModelInfer", request, pb.ModelInferResponse)
        ms = (time.perf_counter() - start) * 1e3
        for out, raw in zip(response.outputs, response.raw_output_contents):
            values = struct.unpack("<%df" % (len(raw) // 4), raw)
            per = len(values) // out.shape[0]
            classes = [max(range(per), key=lambda k: values[n * per + k]) for n in range(out.shape[0])]
            print("ModelInfer %s: output %s %s %s, arg-max %s (%.2f ms)" % (
                response.id, out.name, out.datatype, list(out.shape), classes, ms))
    except grpc.RpcError as e:
        print("grpc_client: %s: %s" % (e.code().name, e.details()), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
