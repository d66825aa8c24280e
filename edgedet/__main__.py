import sys

from edgedet.cli import main

sys.exit(main())
