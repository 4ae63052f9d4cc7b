"""A `hydra serve` process for the Python integration tests: started on free
ports with its output in a log file next to the model, waited on through
the health service, stopped with SIGTERM (which must exit 0)."""

import os
import signal
import subprocess
import sys
import time

import grpc

from free_ports import free_ports


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


class Server:
    """Usage: Server(hydra, model_dir, *flags); wait_serving(stubs); stop()."""

    def __init__(self, hydra, path, *flags):
        self.port, self.metrics_port = free_ports(2)
        self.log = open(os.path.join(os.path.dirname(path), "serve.log"), "w+")
        self.proc = subprocess.Popen(
            [hydra, "serve", "--model=" + path, "--host=127.0.0.1", "--port=%d" % self.port,
             "--metrics_port=%d" % self.metrics_port, "--drain_seconds=5", "--http_port=0"]
            + list(flags),
            stdout=self.log, stderr=subprocess.STDOUT)
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % self.port)

    def wait_serving(self, stubs, timeout=120):
        stub = stubs.health_grpc.HealthStub(self.channel)
        serving = stubs.health_pb.HealthCheckResponse.SERVING
        deadline = time.time() + timeout
        while time.time() < deadline:
            check(self.proc.poll() is None, "server exited early:\n" + self.output())
            try:
                if stub.Check(stubs.health_pb.HealthCheckRequest(), timeout=2).status == serving:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        fail("server not SERVING within %d s:\n%s" % (timeout, self.output()))

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        check(code == 0, "server exited %d on SIGTERM:\n%s" % (code, self.output()))
