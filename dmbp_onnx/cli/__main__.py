"""``python -m dmbp_onnx.cli`` runs the command line."""

import sys

from dmbp_onnx.cli import main

sys.exit(main())
