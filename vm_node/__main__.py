"""`python -m vm_node`: run one VM until its duration ends or a signal arrives."""

import asyncio
import os
import sys

from vm_node.config import NodeConfig
from vm_node.errors import SettingError
from vm_node.service import serve


def main() -> int:
    try:
        config = NodeConfig.from_args(sys.argv[1:], os.environ)
    except SettingError as e:
        print(f"vm_node: {e}", file=sys.stderr)
        return 2
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
