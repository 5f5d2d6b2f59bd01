import sys

from focalspec.cli_main import main

sys.exit(main())
