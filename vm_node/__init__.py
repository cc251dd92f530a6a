"""clocklab VM node: one simulated machine as a standalone asyncio service."""
