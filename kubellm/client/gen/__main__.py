"""`python -m kubellm.client.gen [--verify] [--out DIR]`: write (or check) kubellm/client/generated."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import kubellm
from kubellm.client import gen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubellm.client.gen", description=__doc__)
    parser.add_argument("--verify", action="store_true", help="exit 1 when the generated files are stale")
    parser.add_argument("--out", type=Path, default=gen.OUTPUT, help="the generated package's directory")
    args = parser.parse_args(argv)
    source = Path(kubellm.__file__).resolve().parent
    if args.out.resolve().parents[1] != source:
        print(f"error: the types come from {source}, but the output is {args.out}: run from that checkout",
              file=sys.stderr)
        return 2
    if args.verify:
        problems = gen.verify(args.out)
        for p in problems:
            print(p, file=sys.stderr)
        if problems:
            print("the generated clientset is out of date: run hack/update-codegen.sh", file=sys.stderr)
            return 1
        print(f"generated clientset up to date ({args.out})")
        return 0
    for name in gen.write(args.out):
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
