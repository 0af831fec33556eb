import sys

from hks.cli import main

sys.exit(main())
