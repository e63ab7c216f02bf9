"""``python -m channels.server path.to.module:channel_layer`` — same as ``channels-server``."""

import sys

from channels.server.cli import main

sys.exit(main())
