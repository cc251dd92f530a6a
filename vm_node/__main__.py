"""`python -m vm_node`: run one VM until its duration ends or a signal arrives."""

import sys

# Modules a VM never uses that its imports would load anyway, each worth MBs of RSS in
# every VM: asyncio's TLS support (ssl, with OpenSSL), OpenSSL's hashes (hashlib and
# hmac then use Python's built-in SHA-256), structlog's optional console renderers, and
# typing_extensions (0.2 MB), which msgspec takes where a development install has it.
UNUSED = ("ssl", "_ssl", "_hashlib", "rich", "better_exceptions", "colorama", "typing_extensions")


def main() -> int:
    for name in UNUSED:  # None in sys.modules: importing it raises ImportError
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    import asyncio
    import os

    from vm_node.config import NodeConfig
    from vm_node.errors import SettingError
    from vm_node.service import serve

    try:
        config = NodeConfig.from_args(sys.argv[1:], os.environ)
    except SettingError as e:
        print(f"vm_node: {e}", file=sys.stderr)
        return 2
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
