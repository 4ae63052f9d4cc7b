#!/usr/bin/env python3
"""An example hydra client on grpcio.

    client.py generate --target=localhost:50051 --prompt="Once upon a time"
    client.py health --target=localhost:50051
    client.py list --target=localhost:50051

`generate` streams a completion: the text goes to stdout as it arrives, the
finish reason and token counts to stderr at the end. `health` runs the
standard health check for the whole server ("") and for hydra.v1.Inference,
and exits 0 only when both are SERVING. `list` lists the served services via
server reflection (v1alpha, the version gRPC 1.51 serves).

The Python stubs are generated from the .proto files on each run (into a
temporary folder), or once into --stubs=DIR and reused from there.
"""

import argparse
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_PROTOS = os.path.join(HERE, "..", "..", "proto")
# The copies of the standard protos are compiled from their own folder, so
# their modules are top-level `health_pb2` and `reflection_pb2`: under their
# real path, grpc/health/v1/, they would be shadowed by the `grpc` package.
HEALTH_DIR = os.path.join(REPO_PROTOS, "grpc", "health", "v1")
REFLECTION_DIR = os.path.join(REPO_PROTOS, "grpc", "reflection", "v1alpha")

INFERENCE_SERVICE = "hydra.v1.Inference"


def stub_compilers():
    """The stub compilers found here, in the order they are tried.

    protoc with gRPC's Python plugin first (Debian: protobuf-compiler and
    protobuf-compiler-grpc): it matches Debian's python3-protobuf, whereas
    the grpc_tools Debian ships (python3-grpc-tools 1.14, protoc 3.6) cannot
    compile proto3 `optional` fields, and its code for the other files does
    not import under python3-protobuf. Then grpcio-tools, the compiler of a
    pip installation.
    """
    compilers = []
    protoc_path = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if protoc_path and plugin:
        compilers.append(("protoc with grpc_python_plugin",
                          [protoc_path,
                           "--plugin=protoc-gen-grpc_python=" + plugin]))
    if importlib.util.find_spec("grpc_tools") is not None:
        compilers.append(("grpc_tools.protoc",
                          [sys.executable, "-m", "grpc_tools.protoc"]))
    return compilers


def make_packages(out, proto):
    """Regular packages for the folders of `proto`'s modules, so that no
    other installed package of the same name (`hydra`) wins."""
    folder = os.path.dirname(proto)
    while folder:
        open(os.path.join(out, folder, "__init__.py"), "a").close()
        folder = os.path.dirname(folder)


def run_quietly(command):
    """Runs `command`; returns None on success, else its last output line."""
    result = subprocess.run(command, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    if result.returncode == 0:
        return None
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else "exit status %d" % result.returncode


def protoc(include, proto, out):
    """Compiles `proto` (relative to `include`) to Python and gRPC stubs with
    the first compiler whose stubs import here: code from a protoc much older
    or newer than the installed protobuf does not. Exits naming each
    compiler's failure."""
    module = proto[:-len(".proto")].replace("/", ".")
    check = ("import sys; sys.path.insert(0, sys.argv[1]); "
             "import %s_pb2, %s_pb2_grpc" % (module, module))
    failures = []
    for name, command in stub_compilers():
        error = run_quietly(command + ["-I", include, "--python_out=" + out,
                                       "--grpc_python_out=" + out, proto])
        if error is None:
            make_packages(out, proto)
            error = run_quietly([sys.executable, "-c", check, out])
            if error is None:
                return
            error = "its stubs do not import: " + error
        failures.append("%s: %s" % (name, error))
    if not failures:
        failures.append("no compiler found: install protobuf-compiler and "
                        "protobuf-compiler-grpc (Debian), or pip install "
                        "grpcio-tools")
    sys.exit("error: cannot generate the stubs of %s\n  %s"
             % (proto, "\n  ".join(failures)))


def load_stubs(out):
    """Generates what `out` lacks and returns a namespace of stub modules."""
    os.makedirs(out, exist_ok=True)
    if not os.path.exists(os.path.join(out, "hydra", "v1", "inference_pb2.py")):
        protoc(REPO_PROTOS, "hydra/v1/inference.proto", out)
    make_packages(out, "hydra/v1/inference.proto")
    sys.path.insert(0, out)

    stubs = argparse.Namespace()
    stubs.pb = importlib.import_module("hydra.v1.inference_pb2")
    stubs.grpc = importlib.import_module("hydra.v1.inference_pb2_grpc")
    # Prefer the packaged health and reflection stubs; fall back to ours.
    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError:
        if not os.path.exists(os.path.join(out, "health_pb2.py")):
            protoc(HEALTH_DIR, "health.proto", out)
        health_pb2 = importlib.import_module("health_pb2")
        health_pb2_grpc = importlib.import_module("health_pb2_grpc")
    try:
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    except ImportError:
        if not os.path.exists(os.path.join(out, "reflection_pb2.py")):
            protoc(REFLECTION_DIR, "reflection.proto", out)
        reflection_pb2 = importlib.import_module("reflection_pb2")
        reflection_pb2_grpc = importlib.import_module("reflection_pb2_grpc")
    stubs.health_pb, stubs.health_grpc = health_pb2, health_pb2_grpc
    stubs.reflection_pb, stubs.reflection_grpc = reflection_pb2, reflection_pb2_grpc
    return stubs


def generate(stubs, channel, args, metadata):
    request = stubs.pb.GenerateRequest()
    # `prompt` is UTF-8 on the wire; the proto may declare it string or bytes.
    prompt_field = request.DESCRIPTOR.fields_by_name["prompt"]
    if prompt_field.type == prompt_field.TYPE_BYTES:
        request.prompt = args.prompt.encode("utf-8")
    else:
        request.prompt = args.prompt
    if args.temperature is not None:
        request.sampling.temperature = args.temperature
    if args.seed is not None:
        request.sampling.seed = args.seed
    if args.max_tokens is not None:
        request.stopping.max_tokens = args.max_tokens
    stub = stubs.grpc.InferenceStub(channel)
    last = None
    for message in stub.GenerateStream(request, timeout=args.timeout,
                                       metadata=metadata):
        sys.stdout.write(message.text)
        sys.stdout.flush()
        last = message
    sys.stdout.write("\n")
    # The last message carries the finish reason and usage.
    if last is not None:
        usage = last.usage
        print("finish reason: %s, prompt tokens: %d, completion tokens: %d, "
              "cached prompt tokens: %d" % (
                  stubs.pb.FinishReason.Name(last.finish_reason),
                  usage.prompt_tokens, usage.completion_tokens,
                  usage.cached_prompt_tokens), file=sys.stderr)
    return 0


def health(stubs, channel, args, metadata):
    stub = stubs.health_grpc.HealthStub(channel)
    status_enum = stubs.health_pb.HealthCheckResponse.ServingStatus
    all_serving = True
    for service in ("", INFERENCE_SERVICE):
        response = stub.Check(stubs.health_pb.HealthCheckRequest(service=service),
                              timeout=args.timeout, metadata=metadata)
        print("%s: %s" % (service or '"" (server)',
                          status_enum.Name(response.status)))
        all_serving &= response.status == status_enum.Value("SERVING")
    return 0 if all_serving else 1


def list_services(stubs, channel, args, metadata):
    stub = stubs.reflection_grpc.ServerReflectionStub(channel)
    request = stubs.reflection_pb.ServerReflectionRequest(list_services="")
    # A bidirectional stream: one request, one response.
    for response in stub.ServerReflectionInfo(iter([request]),
                                              timeout=args.timeout,
                                              metadata=metadata):
        if response.HasField("error_response"):
            print("reflection error: " + response.error_response.error_message,
                  file=sys.stderr)
            return 1
        for service in response.list_services_response.service:
            print(service.name)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["generate", "health", "list"])
    parser.add_argument("--target", default="localhost:50051",
                        help="server address, host:port")
    parser.add_argument("--prompt", default="Once upon a time")
    parser.add_argument("--max_tokens", type=int, default=None,
                        help="default: the server's (at most 256)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="0 = greedy; default: the server's (1.0)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--api_key", default="",
                        help="sent as 'authorization: Bearer <key>'")
    parser.add_argument("--timeout", type=float, default=60,
                        help="deadline of each call, seconds")
    parser.add_argument("--stubs", default=None,
                        help="folder to generate the stubs into once and "
                             "reuse; default: a fresh temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        stubs = load_stubs(args.stubs or temp)
        metadata = ([("authorization", "Bearer " + args.api_key)]
                    if args.api_key else None)
        run = {"generate": generate, "health": health,
               "list": list_services}[args.command]
        with grpc.insecure_channel(args.target) as channel:
            try:
                return run(stubs, channel, args, metadata)
            except grpc.RpcError as e:
                print("error: %s: %s" % (e.code().name, e.details()),
                      file=sys.stderr)
                return 1


if __name__ == "__main__":
    sys.exit(main())
