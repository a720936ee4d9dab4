"""`python -m kubellm.devcluster demo [...]`: see `kubellm.devcluster.demo`."""

import sys

from kubellm.devcluster import demo

if len(sys.argv) < 2 or sys.argv[1] != "demo":
    print("usage: python -m kubellm.devcluster demo [--state-dir DIR] [--no-members] [-- apiserver flags]",
          file=sys.stderr)
    sys.exit(2)
sys.exit(demo.main(sys.argv[2:]))
