import sys

from frelon.cli import main

sys.exit(main())
