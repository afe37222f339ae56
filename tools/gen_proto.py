"""Regenerate netc/caffe_pb2.py from schema/caffe.proto.

    python tools/gen_proto.py            # write netc/caffe_pb2.py
    python tools/gen_proto.py --check    # exit 1 if the committed file is stale

The committed bindings are generated with grpcio-tools 1.62.3 (protoc 25, protobuf 4.25 gencode): that
gencode carries no runtime version check, so it runs on every protobuf from 4.21 to 7.x, the range that
pyproject.toml declares.  A newer protoc would pin the runtime to its own major version.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "schema" / "caffe.proto"
OUT = ROOT / "netc" / "caffe_pb2.py"


def generate() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO.parent}", f"--python_out={tmp}", str(PROTO)]
        subprocess.run(cmd, check=True)
        return (Path(tmp) / "caffe_pb2.py").read_text()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args(argv)
    text = generate()
    if args.check:
        if OUT.read_text() != text:
            print(f"{OUT} is stale: run python tools/gen_proto.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
