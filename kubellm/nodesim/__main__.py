import sys

from kubellm.nodesim.app import main

sys.exit(main())
