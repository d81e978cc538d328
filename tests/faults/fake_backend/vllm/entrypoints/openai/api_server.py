"""A stand-in for `python -m vllm.entrypoints.openai.api_server` in ModelServer tests.

It takes vLLM's flags, serves the fault server on --port, and can misbehave on
request through environment variables:
  FAKE_VLLM_STARTUP_S=2        wait before listening (a slow model load)
  FAKE_VLLM_EXIT=3             exit with this code before listening
  FAKE_VLLM_IGNORE_SIGTERM=1   ignore SIGTERM, so only SIGKILL stops it
  FAKE_VLLM_CHILD=1            spawn a sleeping child (vLLM's engine core) that must die too
"""

import argparse
import os
import signal
import subprocess
import sys
import time

from tests.faults.fault_server import FaultServer

parser = argparse.ArgumentParser()
parser.add_argument("--model")
parser.add_argument("--served-model-name")
parser.add_argument("--host")
parser.add_argument("--port", type=int)
args, _ = parser.parse_known_args()

print("fake vllm argv:", " ".join(sys.argv[1:]), flush=True)
if os.environ.get("FAKE_VLLM_IGNORE_SIGTERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.environ.get("FAKE_VLLM_CHILD"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.environ["FAKE_VLLM_CHILD"], "w") as f:
        f.write(str(child.pid))
time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP_S", "0")))
if os.environ.get("FAKE_VLLM_EXIT"):
    print("fake vllm: simulated crash while loading the model", flush=True)
    sys.exit(int(os.environ["FAKE_VLLM_EXIT"]))
server = FaultServer(model=args.served_model_name, port=args.port).start()
print(f"fake vllm listening on {args.port}", flush=True)
while True:
    time.sleep(1)
